// Doc tests: the runnable examples in a package README.
//
// A fenced block whose info string is `js doctest` is an example that runs as its own ES module with plain
// `node`. Two more kinds of blocks go with it:
//
//   ```js doctest continued   appended to the example before it (one module: it may use what that one defined)
//   ```text output            what the example before it prints on stdout (checked; `...` is a wildcard)
//   ```yaml file=tiny.yaml    written to tiny.yaml in the working directory before the README's examples run
//
// Output matching: both sides have trailing spaces and blank lines at either end removed; a line that is
// exactly `...` matches any number of lines (none included), and `...` inside a line matches any text.

const FENCE = /^(\s*)(`{3,})(.*)$/;
const JS = new Set(['js', 'javascript', 'mjs']);

/**
 * Parses a README's doctest blocks.
 * @param {string} markdown
 * @returns {{ examples: { line: number, code: string, expected: string | null }[], files: { name: string, content: string, line: number }[] }}
 */
export function extractDoctests(markdown) {
  const examples = [];
  const files = [];
  const lines = markdown.split('\n');
  // What the last `text output` block may attach to: the last doctest block, until a new doctest starts.
  let lastExample = null;
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    const [, indent, ticks, infoText] = open;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !closes(lines[end], ticks)) end++;
    if (end === lines.length) throw new Error(`README.md:${i + 1}: code block never closed`);
    const body = lines
      .slice(start, end)
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .join('\n');
    const words = infoText.trim().split(/\s+/).filter(Boolean);
    const [lang = '', ...flags] = words;
    const where = `README.md:${i + 1}`;
    const file = flags.find((f) => f.startsWith('file='));
    if (flags.includes('doctest')) {
      if (!JS.has(lang)) throw new Error(`${where}: a doctest block must be js, not "${lang}"`);
      if (flags.includes('continued')) {
        if (!lastExample) throw new Error(`${where}: "doctest continued" with no doctest block before it`);
        lastExample.code += `\n${body}`;
        lastExample.pendingOutput = true;
      } else {
        lastExample = { line: i + 1, code: body, expected: null, pendingOutput: true };
        examples.push(lastExample);
      }
    } else if (flags.includes('output')) {
      if (!lastExample?.pendingOutput)
        throw new Error(`${where}: an output block must follow a doctest block (one output block each)`);
      lastExample.expected = lastExample.expected === null ? body : `${lastExample.expected}\n${body}`;
      lastExample.pendingOutput = false;
    } else if (file) {
      const name = file.slice('file='.length);
      if (!/^[\w.-]+(\/[\w.-]+)*$/.test(name) || name.split('/').includes('..'))
        throw new Error(`${where}: file name "${name}" must be a relative path inside the working directory`);
      files.push({ name, content: `${body}\n`, line: i + 1 });
    }
    i = end;
  }
  return {
    examples: examples.map(({ line, code, expected }) => ({ line, code: `${code}\n`, expected })),
    files,
  };
}

function closes(line, ticks) {
  const t = line.trim();
  return t.startsWith(ticks) && /^`+$/.test(t);
}

/**
 * Compares what an example printed with its output block.
 * @returns {string | null} null when they match, else a description of the first difference
 */
export function compareOutput(expected, actual) {
  const want = normalize(expected);
  const got = normalize(actual);
  if (matchLines(want, 0, got, 0)) return null;
  // Report the first expected line that no prefix match gets past, with what was printed there.
  let w = 0;
  let g = 0;
  while (w < want.length && g < got.length && want[w] !== '...' && lineMatches(want[w], got[g])) {
    w++;
    g++;
  }
  const wantLine = w < want.length ? want[w] : '(end of output)';
  const gotLine = g < got.length ? got[g] : '(end of output)';
  return `output line ${g + 1}: expected ${JSON.stringify(wantLine)}, got ${JSON.stringify(gotLine)}`;
}

function normalize(text) {
  const lines = text
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.trimEnd());
  while (lines.length && lines[0] === '') lines.shift();
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function matchLines(want, w, got, g) {
  if (w === want.length) return g === got.length;
  if (want[w] === '...') {
    for (let k = g; k <= got.length; k++) if (matchLines(want, w + 1, got, k)) return true;
    return false;
  }
  return g < got.length && lineMatches(want[w], got[g]) && matchLines(want, w + 1, got, g + 1);
}

function lineMatches(pattern, line) {
  if (!pattern.includes('...')) return pattern === line;
  const parts = pattern.split('...').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('.*')}$`, 's').test(line);
}
