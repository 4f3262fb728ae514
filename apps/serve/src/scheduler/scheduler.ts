import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DecodedRow, Engine, EngineSequence } from '../engine/types.js';
import type { Generation } from '../generation/generation.js';
import { scorePrompt } from '../generation/prompt-logprobs.js';

export interface SchedulerOptions {
  /** Most sequences decoded together in one step. */
  maxBatch: number;
  /** Most sequences waiting for a slot; beyond it `submit` throws QueueFullError. */
  maxQueue: number;
}

export interface SchedulerStats {
  waiting: number;
  running: number;
}

export interface SchedulerHooks {
  /** Called after every change of the queue or the batch (for gauges). */
  onStats?(stats: SchedulerStats): void;
  /** Called once per decode step with the batch size (for throughput accounting). */
  onStep?(batchSize: number): void;
  /**
   * Checks the engine after one of its calls threw (run in the loop, so no other engine call overlaps it); throwing
   * means the engine is broken: everything queued or running ends with an error and `submit` refuses new work.
   */
  probe?(): Promise<void>;
  /** Called once when the probe finds the engine broken. */
  onEngineFailed?(error: Error): void;
}

/** Most padded prompt positions (sequences x longest prompt) one batched prefill takes: a pass stays short. */
const PREFILL_BATCH_POSITIONS = 1024;

export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

export class ShuttingDownError extends Error {
  override name = 'ShuttingDownError';
}

/** A request with more sequences than the batch and the queue hold together: it could never be taken. */
export class TooManySequencesError extends Error {
  override name = 'TooManySequencesError';
}

export class EngineFailedError extends Error {
  override name = 'EngineFailedError';
}

interface Slot {
  generation: Generation;
  sequence: EngineSequence | undefined;
  cancelled: boolean;
  settle: () => void;
}

/**
 * Continuous batching. Waiting sequences join the running batch at token boundaries (up to `maxBatch`), each
 * with its own KV cache; every iteration runs one batched decode step for all running sequences; a sequence
 * leaves the batch as soon as it finishes (max tokens, stop, EOS) or its client goes away.
 */
export class Scheduler {
  private readonly waiting: Slot[] = [];
  private readonly running: Slot[] = [];
  private loop: Promise<void> | undefined;
  private closed = false;
  /** Set once the engine is found broken; nothing runs after. */
  private failure: Error | undefined;
  /** An engine call threw since the last probe. */
  private engineErrored = false;

  constructor(
    private readonly engine: Engine,
    readonly options: SchedulerOptions,
    private readonly hooks: SchedulerHooks = {},
  ) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1)
      throw new RangeError('maxBatch must be >= 1');
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0)
      throw new RangeError('maxQueue must be >= 0');
  }

  get stats(): SchedulerStats {
    return { waiting: this.waiting.length, running: this.running.length };
  }

  /** The engine failure that stopped this scheduler, if any. */
  get engineFailure(): Error | undefined {
    return this.failure;
  }

  /**
   * Throws what `submit` would throw for `count` new sequences (shutting down, engine failed, queue full), so a
   * request can be refused before any work is spent on it.
   */
  checkCapacity(count: number): void {
    if (this.failure) throw new EngineFailedError(`the model engine failed: ${this.failure.message}`);
    if (this.closed) throw new ShuttingDownError('the server is shutting down');
    // A request is only refused when it would wait: free batch slots take it at the next token boundary.
    const free = Math.max(0, this.options.maxBatch - this.running.length);
    if (count > this.options.maxQueue + this.options.maxBatch) {
      throw new TooManySequencesError(
        `the request needs ${count} sequences (prompts x n); this server holds at most ${this.options.maxBatch + this.options.maxQueue} (--max-batch + --max-queue)`,
      );
    }
    if (this.waiting.length + count > this.options.maxQueue + free) {
      throw new QueueFullError(
        `the queue is full (${this.waiting.length} waiting, limit ${this.options.maxQueue}); retry later`,
      );
    }
  }

  /**
   * Queues generations (the choices of one request, all or none) and resolves when every one has finished.
   * Aborting `signal` ends them with finish reason `abort` and frees their slots at once.
   */
  submit(generations: readonly Generation[], signal?: AbortSignal): Promise<void> {
    this.checkCapacity(generations.length);
    const done = generations.map(
      (generation) =>
        new Promise<void>((settle) => {
          this.waiting.push({ generation, sequence: undefined, cancelled: false, settle });
        }),
    );
    if (signal) {
      const cancel = () => this.cancel(generations);
      if (signal.aborted) cancel();
      else signal.addEventListener('abort', cancel, { once: true });
    }
    this.report();
    this.loop ??= this.run().finally(() => {
      this.loop = undefined;
    });
    return Promise.all(done).then(() => {});
  }

  /** Refuses new work; resolves once everything queued or running has finished. */
  async drain(): Promise<void> {
    this.closed = true;
    await this.loop;
  }

  /** Ends everything queued or running now with `abort`. */
  abortAll(): void {
    this.cancel([...this.waiting, ...this.running].map((s) => s.generation));
  }

  private cancel(generations: readonly Generation[]): void {
    const set = new Set(generations);
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const slot = this.waiting[i]!;
      if (!set.has(slot.generation)) continue;
      this.waiting.splice(i, 1);
      slot.generation.end('abort');
      slot.settle();
    }
    // A running sequence may be inside an engine call: mark it, and free its cache right away if it is not.
    for (const slot of this.running) {
      if (!set.has(slot.generation) || slot.cancelled) continue;
      slot.cancelled = true;
      slot.generation.end('abort');
    }
    this.reapCancelled();
    this.report();
  }

  private busy = false;

  private reapCancelled(): void {
    if (this.busy) return;
    for (let i = this.running.length - 1; i >= 0; i--) {
      const slot = this.running[i]!;
      if (slot.cancelled || slot.generation.done) this.retire(i);
    }
  }

  private retire(index: number): void {
    const [slot] = this.running.splice(index, 1);
    if (!slot) return;
    try {
      if (slot.sequence) this.engine.release(slot.sequence);
    } catch {
      // Freeing failed: the engine is suspect, and the loop's next probe says whether it still works.
      this.engineErrored = true;
    }
    slot.sequence = undefined;
    slot.settle();
  }

  private async run(): Promise<void> {
    // Start on a later turn, so a caller can set up its response before the first token arrives.
    await nextTurn();
    while (this.waiting.length > 0 || this.running.length > 0) {
      await this.admit();
      if (this.running.length > 0) await this.step();
      if (this.engineErrored) await this.probeEngine();
      // Give the event loop a turn between steps: new requests, disconnects and writes happen here.
      await nextTurn();
    }
  }

  /**
   * Prefills waiting sequences into free batch slots: those admitted together go through one batched prefill when
   * the engine has one (up to `PREFILL_BATCH_POSITIONS` padded positions), else one at a time.
   */
  private async admit(): Promise<void> {
    while (this.running.length < this.options.maxBatch && this.waiting.length > 0) {
      const group = this.takeGroup();
      this.running.push(...group);
      this.report();
      this.busy = true;
      try {
        const ready: Slot[] = [];
        for (const slot of group) {
          try {
            // Echoed prompt logprobs need the whole prompt's logits: one forward pass per prompt, here in the loop.
            const score = slot.generation.promptScore;
            if (score && !score.tokens && !slot.cancelled) {
              score.tokens = await scorePrompt(this.engine, slot.generation.promptIds, score.top);
            }
            if (!slot.cancelled) ready.push(slot);
          } catch (err) {
            this.fail(slot, err);
          }
        }
        await this.prefill(ready);
      } finally {
        this.busy = false;
      }
      this.reapCancelled();
      this.report();
      if (this.waiting.length > 0) await nextTurn();
    }
  }

  /** The waiting sequences that join next: as many as free slots allow, within the prefill's position budget. */
  private takeGroup(): Slot[] {
    const free = this.options.maxBatch - this.running.length;
    const group = [this.waiting.shift()!];
    let longest = group[0]!.generation.promptIds.length;
    while (group.length < free && this.waiting.length > 0 && this.engine.prefillMany) {
      const next = Math.max(longest, this.waiting[0]!.generation.promptIds.length);
      if (next * (group.length + 1) > PREFILL_BATCH_POSITIONS) break;
      longest = next;
      group.push(this.waiting.shift()!);
    }
    return group;
  }

  /** Prefills `slots` and takes each one's first token; a failed batch is retried one prompt at a time. */
  private async prefill(slots: readonly Slot[]): Promise<void> {
    if (slots.length === 0) return;
    if (slots.length > 1 && this.engine.prefillMany) {
      let results: Awaited<ReturnType<NonNullable<Engine['prefillMany']>>> | undefined;
      try {
        results = await this.engine.prefillMany(slots.map((s) => s.generation.promptIds));
      } catch {
        // One bad prompt fails the whole batch: find it (and run the others) one at a time.
      }
      if (results) {
        for (const [i, slot] of slots.entries()) {
          try {
            this.start(slot, results[i]!);
          } catch (err) {
            this.fail(slot, err);
          }
        }
        return;
      }
    }
    for (const slot of slots) {
      if (slot.cancelled) continue;
      try {
        this.start(slot, await this.engine.prefill(slot.generation.promptIds));
      } catch (err) {
        this.fail(slot, err);
      }
    }
  }

  private start(slot: Slot, prefilled: { sequence: EngineSequence; logits: Float32Array }): void {
    slot.sequence = prefilled.sequence;
    if (!slot.cancelled) slot.generation.advance(prefilled.logits);
  }

  private fail(slot: Slot, err: unknown): void {
    this.engineErrored = true;
    slot.generation.end('error', err instanceof Error ? err : new Error(String(err)));
  }

  /** One batched decode step for every running sequence. */
  private async step(): Promise<void> {
    const batch = this.running.filter((s) => s.sequence && !s.cancelled && !s.generation.done);
    if (batch.length === 0) return;
    this.busy = true;
    try {
      const sequences = batch.map((s) => s.sequence!);
      const tokens = batch.map((s) => s.generation.lastId);
      // An engine that can choose tokens itself reads back only the token of rows whose choice it can make.
      const rows: DecodedRow[] = this.engine.decodeRows
        ? await this.engine.decodeRows(
            sequences,
            tokens,
            batch.map((s) => s.generation.deviceChoice),
          )
        : (await this.engine.decode(sequences, tokens)).map((logits) => ({ logits }));
      this.hooks.onStep?.(batch.length);
      batch.forEach((slot, i) => {
        if (slot.cancelled) return;
        const row = rows[i]!;
        if ('logits' in row) slot.generation.advance(row.logits);
        else slot.generation.acceptChosen(row.token);
      });
    } catch (err) {
      this.engineErrored = true;
      const error = err instanceof Error ? err : new Error(String(err));
      for (const slot of batch) slot.generation.end('error', error);
    } finally {
      this.busy = false;
    }
    this.reapCancelled();
    this.report();
  }

  /** After an engine error: a probe that fails too means the engine is broken for good. */
  private async probeEngine(): Promise<void> {
    this.engineErrored = false;
    if (!this.hooks.probe || this.failure) return;
    this.busy = true;
    try {
      await this.hooks.probe();
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    } finally {
      this.busy = false;
    }
    if (!this.failure) return;
    this.closed = true;
    const error = new EngineFailedError(`the model engine failed: ${this.failure.message}`);
    for (const slot of [...this.waiting.splice(0), ...this.running]) {
      slot.generation.end('error', error);
      slot.settle();
    }
    // Their caches belong to a broken engine: freeing them may fail too, and is not worth more than a try.
    for (const slot of this.running.splice(0)) {
      try {
        if (slot.sequence) this.engine.release(slot.sequence);
      } catch {}
    }
    this.report();
    this.hooks.onEngineFailed?.(this.failure);
  }

  private report(): void {
    this.hooks.onStats?.(this.stats);
  }
}
