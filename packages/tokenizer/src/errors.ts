// Messages quote pieces of the file; they stay on one line and short whatever the file holds.
const MAX_MESSAGE = 400;

/** `text` with control characters (newlines, NULs, ...) escaped and cut to MAX_MESSAGE characters. */
function oneLine(text: string): string {
  const cut = text.length > MAX_MESSAGE;
  let escaped = '';
  for (const c of cut ? text.slice(0, MAX_MESSAGE) : text) {
    const code = c.charCodeAt(0);
    const control = code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
    escaped += control ? `\\u${code.toString(16).padStart(4, '0')}` : c;
  }
  return cut || escaped.length > MAX_MESSAGE ? `${escaped.slice(0, MAX_MESSAGE)}...` : escaped;
}

/**
 * A tokenizer.json that cannot be loaded: `path` is the JSON path of the offending value (e.g. `model.merges[12]`).
 * The message is one line with at most a short, escaped excerpt of the file.
 */
export class TokenizerJsonError extends Error {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(oneLine(path ? `${path}: ${detail}` : detail));
    this.name = 'TokenizerJsonError';
  }
}

/** A component or option that this implementation does not support; never silently approximated. */
export class UnsupportedComponentError extends TokenizerJsonError {
  constructor(path: string, detail: string) {
    super(path, detail);
    this.name = 'UnsupportedComponentError';
  }
}
