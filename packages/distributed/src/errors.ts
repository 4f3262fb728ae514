/** Base class of every error a process group raises; `op` is the collective (or 'rendezvous'). */
export class ProcessGroupError extends Error {
  constructor(
    message: string,
    readonly op: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A collective did not complete in time; `peer` is the rank it was waiting on (or the rank found to be hung). */
export class CollectiveTimeoutError extends ProcessGroupError {
  constructor(
    message: string,
    op: string,
    readonly peer: number,
    readonly elapsedMs: number,
  ) {
    super(message, op);
  }
}

/** A peer rank died, closed its connection or shut its group down while a collective needed it. */
export class PeerFailureError extends ProcessGroupError {
  constructor(
    message: string,
    op: string,
    readonly peer: number,
  ) {
    super(message, op);
  }
}

/** Ranks called different collectives, or the same one with different sizes or options. */
export class CollectiveMismatchError extends ProcessGroupError {
  constructor(
    message: string,
    op: string,
    readonly peer: number,
  ) {
    super(message, op);
  }
}

/** Rendezvous failed: bad rank/world size, store unreachable, port in use, duplicate ranks. */
export class RendezvousError extends ProcessGroupError {
  constructor(message: string) {
    super(message, 'rendezvous');
  }
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)}s`;
}
