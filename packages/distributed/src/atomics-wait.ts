// Node 16+ has Atomics.waitAsync; the ES2022 typings this package builds against do not declare it yet.
export type WaitAsync = (
  a: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };

/** `Atomics.waitAsync`: waits for `a[index]` to change from `value` without blocking the thread. */
export const waitAsync: WaitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
