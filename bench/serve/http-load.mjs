// Streaming clients against an OpenAI-compatible `/v1/completions` endpoint (mptjs-serve's): each client sends
// its requests one after another, all clients at once; the figures are generated tokens per wall-clock second
// and per CPU second of this process, and the time to first token. Used by bench/serve/load.bench.mjs and the
// GPU kit's serve section.

/** One streaming request: its generated tokens (from the final usage) and its time to first token in seconds. */
export async function streamOne(url, body) {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buffer = '';
  let ttft;
  let tokens;
  let done = false;
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const data = buffer.slice(0, end).replace(/^data: /, '');
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf('\n\n');
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(`error event: ${data}`);
      if (ttft === undefined && chunk.choices?.length) ttft = (performance.now() - t0) / 1000;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  if (!done || tokens === undefined) throw new Error('stream ended without usage and [DONE]');
  return { tokens, ttft };
}

const quantile = (xs, q) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
};

/**
 * `concurrency` clients, each sending `requestsPerClient` requests in turn; `bodyFor(client, request)` gives each
 * request's body (without the streaming fields). Returns tokens/s (wall and per CPU second), TTFT p50/p99 and the
 * number of requests.
 */
export async function httpLoad(url, { concurrency, requestsPerClient, bodyFor }) {
  const ttfts = [];
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const counts = await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      let tokens = 0;
      for (let r = 0; r < requestsPerClient; r++) {
        const one = await streamOne(url, bodyFor(client, r));
        tokens += one.tokens;
        ttfts.push(one.ttft);
      }
      return tokens;
    }),
  );
  const cpu = process.cpuUsage(c0);
  const tokens = counts.reduce((a, b) => a + b, 0);
  return {
    tokens,
    wall: tokens / ((performance.now() - t0) / 1000),
    cpu: tokens / ((cpu.user + cpu.system) / 1e6),
    p50: quantile(ttfts, 0.5),
    p99: quantile(ttfts, 0.99),
    n: ttfts.length,
  };
}
