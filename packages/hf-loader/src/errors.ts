// Messages quote names and values from the file (zip entry names, pickle strings): one line, bounded length.
const MAX_MESSAGE = 1000;

function oneLine(text: string): string {
  const cut = text.length > MAX_MESSAGE;
  let out = '';
  for (const c of cut ? text.slice(0, MAX_MESSAGE) : text) {
    const code = c.charCodeAt(0);
    const control = code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
    out += control ? `\\u${code.toString(16).padStart(4, '0')}` : c;
  }
  return cut ? `${out}...` : out;
}

/**
 * A checkpoint that cannot be read or does not fit its config; the message says exactly what is wrong, on one
 * line (control characters from the file escaped).
 */
export class CheckpointError extends Error {
  override name = 'CheckpointError';

  constructor(message: string) {
    super(oneLine(message));
  }
}

/** A pickle that uses a global outside the allowlist, or an opcode a torch state dict never needs. */
export class UnsafePickleError extends CheckpointError {
  override name = 'UnsafePickleError';
}

/** A hub download that failed: HTTP status, offline cache miss, bad repo id. */
export class HubError extends Error {
  override name = 'HubError';
}
