// tokenizer.json as bytes and text: strict UTF-8 decoding (UTF-16 and invalid bytes are named, never replaced), and
// JSON syntax errors reported on one line with the line, column and a short escaped excerpt, never raw input.
import { TokenizerJsonError } from '../errors.js';

/** `s` escaped like a JSON string body (control characters, quotes, lone surrogates), cut to `max` characters. */
export function escapeExcerpt(s: string, max = 40): string {
  const cut = s.length > max ? `${s.slice(0, max)}...` : s;
  // JSON.stringify escapes control characters and lone surrogates; drop its outer quotes.
  return JSON.stringify(cut).slice(1, -1);
}

/** Byte offset of the first byte that breaks UTF-8 (overlong forms and surrogates included), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of tokenizer.json bytes: UTF-8, with a UTF-8 byte-order mark dropped. UTF-16 / UTF-32 input (with or
 * without a byte-order mark) and invalid UTF-8 are refused with a message that says which and where.
 */
export function decodeTokenizerJson(bytes: Uint8Array): string {
  const [a, b, c, d] = [bytes[0], bytes[1], bytes[2], bytes[3]];
  const encoding =
    a === 0xff && b === 0xfe && c === 0 && d === 0
      ? 'UTF-32 (little-endian, with a byte-order mark)'
      : a === 0 && b === 0 && c === 0xfe && d === 0xff
        ? 'UTF-32 (big-endian, with a byte-order mark)'
        : a === 0xff && b === 0xfe
          ? 'UTF-16 (little-endian, with a byte-order mark)'
          : a === 0xfe && b === 0xff
            ? 'UTF-16 (big-endian, with a byte-order mark)'
            : a !== undefined && a !== 0 && b === 0
              ? 'UTF-16 (little-endian)'
              : a === 0 && b !== undefined && b !== 0
                ? 'UTF-16 (big-endian)'
                : undefined;
  if (encoding) {
    throw new TokenizerJsonError('', `tokenizer.json is ${encoding} text; save it as UTF-8`);
  }
  try {
    return fatalUtf8.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const line = countLines(bytes, at);
    throw new TokenizerJsonError(
      '',
      `tokenizer.json is not valid UTF-8: byte 0x${bytes[at]?.toString(16).padStart(2, '0')} at offset ${at} (line ${line}) does not form a character`,
    );
  }
}

function countLines(bytes: Uint8Array, end: number): number {
  let line = 1;
  for (let i = 0; i < end; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

const WS = new Set([' ', '\t', '\n', '\r']);

/**
 * Offset of the first JSON syntax error in `text` (the end of the text when it stops early), found by a scan that
 * only validates. Iterative, so deep nesting costs no stack.
 */
export function jsonSyntaxErrorOffset(text: string): number {
  let i = 0;
  const stack: ('{' | '[')[] = [];
  const skipWs = () => {
    while (i < text.length && WS.has(text[i]!)) i++;
  };
  const string = (): boolean => {
    if (text[i] !== '"') return false;
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return false;
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else return false;
      } else i++;
    }
    return false;
  };
  const scalar = (): boolean => {
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return true;
      }
    }
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '' || m[0] === '-') return false;
    i += m[0].length;
    return true;
  };
  // `expect` is what may come next: a value, an object key, or what follows a value in its container.
  let expect: 'value' | 'key' | 'after' = 'value';
  for (;;) {
    skipWs();
    if (expect === 'value') {
      const c = text[i];
      if (c === '{' || c === '[') {
        stack.push(c);
        i++;
        skipWs();
        if (text[i] === (c === '{' ? '}' : ']')) {
          i++;
          stack.pop();
          expect = 'after';
        } else expect = c === '{' ? 'key' : 'value';
        continue;
      }
      if (!(c === '"' ? string() : scalar())) return i;
      expect = 'after';
      continue;
    }
    if (expect === 'key') {
      if (!string()) return i;
      skipWs();
      if (text[i] !== ':') return i;
      i++;
      expect = 'value';
      continue;
    }
    const top = stack.at(-1);
    if (top === undefined) return i < text.length ? i : -1;
    const c = text[i];
    if (c === ',') {
      i++;
      expect = top === '{' ? 'key' : 'value';
    } else if (c === (top === '{' ? '}' : ']')) {
      i++;
      stack.pop();
    } else return i;
  }
}

/** A one-line description of why `text` is not JSON: the parser's reason, line, column and an escaped excerpt. */
export function describeJsonSyntaxError(text: string, err: Error): string {
  // V8 quotes the input after the reason (`Unexpected token 'x', "..." is not valid JSON`): drop that part.
  let reason = err.message.replace(/, ".*" is not valid JSON$/s, '').replace(/ in JSON at position \d+$/, '');
  reason = escapeExcerpt(reason, 80);
  const at = jsonSyntaxErrorOffset(text);
  if (at < 0) return `tokenizer.json is not valid JSON: ${reason}`;
  let line = 1;
  let lineStart = 0;
  for (let k = 0; k < at; k++) {
    if (text.charCodeAt(k) === 0x0a) {
      line++;
      lineStart = k + 1;
    }
  }
  const excerpt = escapeExcerpt(text.slice(Math.max(lineStart, at - 20), at + 20), 40);
  const where =
    at >= text.length
      ? 'at the end of the text (truncated?)'
      : `at line ${line}, column ${at - lineStart + 1}`;
  return `tokenizer.json is not valid JSON ${where}: ${reason}${excerpt ? ` near "${excerpt}"` : ''}`;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The JSON path of the first string (key or value) that holds a lone surrogate, which `\ud800`-style escapes can
 * put into otherwise valid JSON but no UTF-8 text can carry; undefined when there is none.
 */
export function loneSurrogatePath(value: unknown): string | undefined {
  const todo: [unknown, string][] = [[value, '']];
  while (todo.length > 0) {
    const [v, path] = todo.pop()!;
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) return path;
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) todo.push([v[i], `${path}[${i}]`]);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        const step = /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `.${k}` : `["${escapeExcerpt(k)}"]`;
        const childPath = path ? `${path}${step}` : step.replace(/^\./, '');
        if (LONE_SURROGATE.test(k)) return childPath;
        todo.push([x, childPath]);
      }
    }
  }
  return undefined;
}
