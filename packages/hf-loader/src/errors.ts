/** A checkpoint that cannot be read or does not fit its config; the message says exactly what is wrong. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** A pickle that uses a global outside the allowlist, or an opcode a torch state dict never needs. */
export class UnsafePickleError extends CheckpointError {
  override name = 'UnsafePickleError';
}

/** A hub download that failed: HTTP status, offline cache miss, bad repo id. */
export class HubError extends Error {
  override name = 'HubError';
}
