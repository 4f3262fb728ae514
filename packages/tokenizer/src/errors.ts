/** A tokenizer.json that cannot be loaded: `path` is the JSON path of the offending value (e.g. `model.merges[12]`). */
export class TokenizerJsonError extends Error {
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(path ? `${path}: ${detail}` : detail);
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
