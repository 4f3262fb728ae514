// The playground page: sends the form as a streamed completion (or chat) request and shows the text as it
// arrives, with time to first token and tokens per second.
import { SseParser } from './sse-parser.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const form = $<HTMLFormElement>('form');
const output = $<HTMLPreElement>('output');
const stats = $<HTMLParagraphElement>('stats');
const runButton = $<HTMLButtonElement>('run');
const stopButton = $<HTMLButtonElement>('stop_button');
let controller: AbortController | null = null;
let modelId: string | undefined;

const value = (id: string) => $<HTMLInputElement>(id).value.trim();
const num = (id: string) => (value(id) === '' ? undefined : Number(value(id)));

function headers(): Record<string, string> {
  const key = value('api_key');
  return { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

async function loadModels(): Promise<void> {
  const label = $<HTMLSpanElement>('model');
  try {
    const res = await fetch('/v1/models', { headers: headers() });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error?.message ?? res.statusText);
    modelId = body.data[0]?.id;
    label.textContent = `model: ${modelId}`;
  } catch (err) {
    label.textContent = `models: ${(err as Error).message}`;
  }
}

function requestBody(chat: boolean): Record<string, unknown> {
  const prompt = $<HTMLTextAreaElement>('prompt').value;
  const body: Record<string, unknown> = {
    model: modelId,
    max_tokens: num('max_tokens'),
    temperature: num('temperature'),
    top_p: num('top_p'),
    top_k: num('top_k'),
    seed: num('seed'),
    stream: true,
  };
  if (value('stop')) body['stop'] = value('stop');
  if (chat) body['messages'] = [{ role: 'user', content: prompt }];
  else body['prompt'] = prompt;
  return body;
}

async function run(): Promise<void> {
  const chat = $<HTMLSelectElement>('mode').value === 'chat';
  output.textContent = '';
  stats.textContent = '';
  stats.classList.remove('error');
  if (!chat) {
    const shown = document.createElement('span');
    shown.className = 'prompt';
    shown.textContent = $<HTMLTextAreaElement>('prompt').value;
    output.append(shown);
  }
  controller = new AbortController();
  runButton.disabled = true;
  stopButton.disabled = false;
  const started = performance.now();
  let firstAt: number | undefined;
  let chunks = 0;
  let completionTokens: number | undefined;
  try {
    const res = await fetch(chat ? '/v1/chat/completions' : '/v1/completions', {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify(requestBody(chat)),
      signal: controller.signal,
    });
    if (!res.ok || !res.body) {
      const body = await res.json().catch(() => ({}));
      throw new Error(`${res.status}: ${body.error?.message ?? res.statusText}`);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    for (;;) {
      const { value: text, done } = await reader.read();
      if (done) break;
      for (const data of parser.push(text)) {
        if (data === '[DONE]') continue;
        const event = JSON.parse(data);
        if (event.error) throw new Error(event.error.message);
        completionTokens = event.usage?.completion_tokens ?? completionTokens;
        for (const choice of event.choices ?? []) {
          const piece: string = chat ? (choice.delta?.content ?? '') : (choice.text ?? '');
          if (piece.length === 0) continue;
          firstAt ??= performance.now();
          chunks++;
          output.append(piece);
        }
      }
      showStats(started, firstAt, completionTokens ?? chunks);
    }
    showStats(started, firstAt, completionTokens ?? chunks);
  } catch (err) {
    if ((err as Error).name !== 'AbortError') {
      stats.textContent = (err as Error).message;
      stats.classList.add('error');
    }
  } finally {
    controller = null;
    runButton.disabled = false;
    stopButton.disabled = true;
  }
}

function showStats(started: number, firstAt: number | undefined, tokens: number): void {
  if (firstAt === undefined) return;
  const now = performance.now();
  const ttft = (firstAt - started) / 1000;
  const decodeSeconds = (now - firstAt) / 1000;
  const rate = tokens > 1 && decodeSeconds > 0 ? ((tokens - 1) / decodeSeconds).toFixed(1) : '–';
  stats.textContent = `${tokens} tokens · first token after ${ttft.toFixed(2)} s · ${rate} tokens/s`;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  void run();
});
stopButton.addEventListener('click', () => controller?.abort());
$<HTMLInputElement>('api_key').addEventListener('change', () => void loadModels());
void loadModels();
