// A client of PyTorch's c10d TCPStore: the key-value store torchrun's agent serves on MASTER_PORT (and that any
// `torch.distributed.TCPStore(..., is_master=True)` serves). Queries go one at a time over one connection, as
// torch's own client sends them; `get` waits for the key first, so it blocks until another rank sets it.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { RendezvousError, seconds } from '../errors.js';
import {
  type C10dProtocol,
  CHECK_NOT_READY,
  CHECK_READY,
  COMMANDS,
  KEY_CALLBACK_REGISTERED,
  LEGACY_DELETE_KEY,
  LEGACY_WATCH_KEY,
  QueryWriter,
  type ReplyParser,
  readBytes,
  readI64,
  readU8,
  STOP_WAITING,
  VALIDATION_MAGIC,
} from './c10d-wire.js';

export type { C10dProtocol } from './c10d-wire.js';

/** Why a store operation failed: `connect` (refused or unreachable until the deadline), `timeout`, `protocol`
 * (a reply that no c10d store sends) or `closed` (the server went away). */
export type C10dStoreErrorKind = 'connect' | 'timeout' | 'protocol' | 'closed';

export class C10dStoreError extends RendezvousError {
  constructor(
    message: string,
    readonly kind: C10dStoreErrorKind,
  ) {
    super(message);
  }
}

export interface C10dStoreOptions {
  host: string;
  port: number;
  /** Default limit for each operation, and how long connecting may keep retrying a refused port (ms). */
  timeoutMs: number;
  /**
   * 'validated' for torch >= 2.3 servers (the first query of a connection is VALIDATE), 'legacy' for older ones;
   * 'auto' (default) asks the server which (see `detectC10dProtocol`).
   */
  protocol?: 'auto' | C10dProtocol;
  /** How long 'auto' waits for a legacy server's answer before concluding the server is torch >= 2.3 (ms). */
  probeMs?: number;
}

/** The default of `probeMs`: a legacy server answers in microseconds; silence means torch >= 2.3's libuv server. */
export const DEFAULT_PROBE_MS = 1000;

const RETRY_MS = 100;

/** One TCP connection and the reply being read on it. */
class Connection {
  private buf: Buffer = Buffer.alloc(0);
  private pending: { take: () => void; fail: (e: Error) => void } | null = null;
  private closedError: C10dStoreError | null = null;

  constructor(
    readonly socket: Socket,
    private readonly where: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      this.pending?.take();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closedError ??= new C10dStoreError(`the c10d store at ${where} closed the connection`, 'closed');
      this.pending?.fail(this.closedError);
    });
  }

  get destroyed(): boolean {
    return this.closedError !== null || this.socket.destroyed;
  }

  send(query: Buffer): void {
    if (this.closedError) throw this.closedError;
    this.socket.write(query);
  }

  /** Sends a query that has no reply, resolving once the kernel has it (a `close()` right after cannot drop it). */
  sendAll(query: Buffer): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) =>
      this.socket.write(query, (err) => (err ? reject(this.closedError ?? err) : resolve())),
    );
  }

  /** Waits for one reply; on timeout the connection is dropped (a late reply would be misread as the next one). */
  read<T>(parse: ReplyParser<T>, timeoutMs: number, onTimeout: () => C10dStoreError): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise<T>((resolve, reject) => {
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.pending = null;
        fn();
      };
      const timer = setTimeout(() => {
        done(() => reject(onTimeout()));
        this.destroy();
      }, timeoutMs);
      this.pending = {
        take: () => {
          let r: { value: T; used: number } | null;
          try {
            r = parse(this.buf);
          } catch (err) {
            done(() =>
              reject(
                new C10dStoreError(`c10d store at ${this.where}: ${(err as Error).message}`, 'protocol'),
              ),
            );
            this.destroy();
            return;
          }
          if (!r) return;
          this.buf = this.buf.subarray(r.used);
          const { value } = r;
          done(() => resolve(value));
        },
        fail: (e) => done(() => reject(e)),
      };
      if (this.buf.length) this.pending.take();
    });
  }

  destroy(): void {
    this.closedError ??= new C10dStoreError(
      `the connection to the c10d store at ${this.where} was closed`,
      'closed',
    );
    this.socket.destroy();
  }
}

/** Opens a TCP connection, retrying while the port refuses (the store may come up after this rank) until `deadline`. */
async function openSocket(host: string, port: number, deadline: number, timeoutMs: number): Promise<Socket> {
  let last = '';
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect({ host, port });
        const timer = setTimeout(
          () => {
            s.destroy();
            reject(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' }));
          },
          Math.max(1, deadline - performance.now()),
        );
        s.once('connect', () => {
          clearTimeout(timer);
          resolve(s);
        });
        s.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      last = e.code ?? e.message;
      if (performance.now() + RETRY_MS >= deadline) break;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  throw new C10dStoreError(
    `could not connect to the c10d store at ${host}:${port} within ${seconds(timeoutMs)} (${last}${
      last === 'ECONNREFUSED' ? ': nothing listens there; is MASTER_ADDR:MASTER_PORT the store?' : ''
    })`,
    'connect',
  );
}

/**
 * Tells a torch <= 2.2 store from a torch >= 2.3 one without disturbing either: on a throwaway connection it sends
 * the legacy GETNUMKEYS (command 6, no arguments). A legacy server answers with 8 bytes. A torch >= 2.3 server
 * expects VALIDATE first: its legacy backend closes the connection, its libuv backend ignores the query, so
 * silence for `probeMs` means 'validated'. The reverse order would be unsafe: VALIDATE is SET on a legacy server,
 * which would read the magic number as the length of a key.
 */
export async function detectC10dProtocol(
  host: string,
  port: number,
  timeoutMs: number,
  probeMs = DEFAULT_PROBE_MS,
): Promise<C10dProtocol> {
  const where = `${host}:${port}`;
  const conn = new Connection(await openSocket(host, port, performance.now() + timeoutMs, timeoutMs), where);
  try {
    conn.send(new QueryWriter(COMMANDS.legacy.numKeys).build());
    await conn.read(readI64, probeMs, () => new C10dStoreError('probe timed out', 'timeout'));
    return 'legacy';
  } catch (err) {
    if (err instanceof C10dStoreError && (err.kind === 'timeout' || err.kind === 'closed'))
      return 'validated';
    throw err;
  } finally {
    conn.destroy();
  }
}

export class C10dStore {
  private conn: Connection | null;
  private chain: Promise<unknown> = Promise.resolve();
  private legacyDelete: number | undefined;
  private closed = false;

  private constructor(
    private readonly opts: Required<Pick<C10dStoreOptions, 'host' | 'port' | 'timeoutMs' | 'probeMs'>>,
    readonly protocol: C10dProtocol,
    conn: Connection,
  ) {
    this.conn = conn;
  }

  /** Connects (retrying a refused port until `timeoutMs`), settles the protocol and validates when it must. */
  static async connect(options: C10dStoreOptions): Promise<C10dStore> {
    const { host, port, timeoutMs } = options;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new C10dStoreError(`c10d store port ${port} is not a TCP port (1..65535)`, 'connect');
    }
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    const opts = { host, port, timeoutMs, probeMs: options.probeMs ?? DEFAULT_PROBE_MS };
    const protocol =
      options.protocol === undefined || options.protocol === 'auto'
        ? await detectC10dProtocol(host, port, timeoutMs, opts.probeMs)
        : options.protocol;
    if (protocol !== 'legacy' && protocol !== 'validated') {
      throw new RangeError(
        `unknown c10d store protocol '${String(protocol)}' (use auto, legacy or validated)`,
      );
    }
    return new C10dStore(opts, protocol, await C10dStore.open(opts, protocol));
  }

  private static async open(
    opts: { host: string; port: number; timeoutMs: number },
    protocol: C10dProtocol,
  ): Promise<Connection> {
    const socket = await openSocket(opts.host, opts.port, performance.now() + opts.timeoutMs, opts.timeoutMs);
    const conn = new Connection(socket, `${opts.host}:${opts.port}`);
    // torch >= 2.3 drops (or ignores) a connection whose first query is anything else; VALIDATE has no reply.
    if (protocol === 'validated') {
      conn.send(new QueryWriter(COMMANDS.validated.validate).u32(VALIDATION_MAGIC).build());
    }
    return conn;
  }

  get where(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** The local address of the connection: the interface on which this machine reaches the store's host. */
  get localAddress(): string {
    return this.conn?.socket.localAddress ?? '127.0.0.1';
  }

  private get cmd() {
    return COMMANDS[this.protocol];
  }

  /** Runs one exchange after the previous ones, on a live connection (a new one after a timeout dropped it). */
  private run<T>(fn: (conn: Connection) => Promise<T>): Promise<T> {
    const next = this.chain.then(async () => {
      if (this.closed)
        throw new C10dStoreError(`the c10d store client for ${this.where} is closed`, 'closed');
      if (!this.conn || this.conn.destroyed) this.conn = await C10dStore.open(this.opts, this.protocol);
      return fn(this.conn);
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  private timeout(what: string, ms: number): () => C10dStoreError {
    return () =>
      new C10dStoreError(`c10d store at ${this.where}: ${what} timed out after ${seconds(ms)}`, 'timeout');
  }

  private exchange<T>(
    query: Buffer,
    parse: ReplyParser<T>,
    what: string,
    ms = this.opts.timeoutMs,
  ): Promise<T> {
    return this.run((conn) => {
      conn.send(query);
      return conn.read(parse, ms, this.timeout(what, ms));
    });
  }

  async set(key: string, value: string | Uint8Array): Promise<void> {
    const query = new QueryWriter(this.cmd.set).key(key).bytes(toBytes(value)).build();
    // SET has no reply; queuing it keeps it ordered before later queries on the same connection.
    await this.run((conn) => conn.sendAll(query));
  }

  /** Waits until `key` exists (up to `timeoutMs`), then returns its value. */
  async get(key: string, timeoutMs = this.opts.timeoutMs): Promise<Buffer> {
    const waitQuery = new QueryWriter(this.cmd.wait).keys([key]).build();
    const getQuery = new QueryWriter(this.cmd.get).key(key).build();
    return this.run(async (conn) => {
      conn.send(waitQuery);
      await this.expectStopWaiting(conn, `get '${key}'`, timeoutMs);
      conn.send(getQuery);
      return conn.read(readBytes, this.opts.timeoutMs, this.timeout(`get '${key}'`, this.opts.timeoutMs));
    });
  }

  async getString(key: string, timeoutMs?: number): Promise<string> {
    return (await this.get(key, timeoutMs)).toString('utf8');
  }

  /** Adds `delta` to the integer stored at `key` (absent counts as 0) and returns the sum. */
  async add(key: string, delta: number | bigint): Promise<number> {
    const d = typeof delta === 'bigint' ? delta : BigInt(checkInteger(delta, 'delta'));
    const v = await this.exchange(
      new QueryWriter(this.cmd.add).key(key).i64(d).build(),
      readI64,
      `add '${key}'`,
    );
    return Number(v);
  }

  /**
   * Sets `key` to `desired` if it holds `expected` (an empty `expected` means "absent"), and returns what the key
   * holds afterwards, as torch does: equal to `desired` when the swap happened. On torch < 2.3 servers a key that
   * compare_set creates does not wake clients waiting for it (`wait`, `get`); poll it with `check` there.
   */
  async compareSet(
    key: string,
    expected: string | Uint8Array,
    desired: string | Uint8Array,
  ): Promise<Buffer> {
    const query = new QueryWriter(this.cmd.compareSet)
      .key(key)
      .bytes(toBytes(expected))
      .bytes(toBytes(desired))
      .build();
    return this.exchange(query, readBytes, `compare_set '${key}'`);
  }

  /** Waits until every key exists. */
  async wait(keys: readonly string[], timeoutMs = this.opts.timeoutMs): Promise<void> {
    const query = new QueryWriter(this.cmd.wait).keys(keys).build();
    await this.run(async (conn) => {
      conn.send(query);
      await this.expectStopWaiting(conn, `wait for ${keys.map((k) => `'${k}'`).join(', ')}`, timeoutMs);
    });
  }

  /** Whether every key exists, without waiting. */
  async check(keys: readonly string[]): Promise<boolean> {
    const parse: ReplyParser<boolean> = (buf) => {
      const r = readU8(buf);
      if (!r) return null;
      if (r.value !== CHECK_READY && r.value !== CHECK_NOT_READY) {
        throw new Error(`check answered ${r.value}, not READY (0) or NOT_READY (1)`);
      }
      return { value: r.value === CHECK_READY, used: 1 };
    };
    return this.exchange(
      new QueryWriter(this.cmd.check).keys(keys).build(),
      parse,
      `check ${keys.join(', ')}`,
    );
  }

  /** Deletes `key`; true when it existed. */
  async deleteKey(key: string): Promise<boolean> {
    const command =
      this.protocol === 'validated' ? COMMANDS.validated.deleteKey : await this.legacyDeleteCommand();
    const n = await this.exchange(new QueryWriter(command).key(key).build(), readI64, `delete_key '${key}'`);
    return n === 1n;
  }

  /** How many keys the store holds (torch counts its own bookkeeping keys too). */
  async numKeys(): Promise<number> {
    return Number(await this.exchange(new QueryWriter(this.cmd.numKeys).build(), readI64, 'num_keys'));
  }

  close(): void {
    this.closed = true;
    this.conn?.destroy();
    this.conn = null;
  }

  private async expectStopWaiting(conn: Connection, what: string, timeoutMs: number): Promise<void> {
    const r = await conn.read(readU8, timeoutMs, this.timeout(what, timeoutMs));
    if (r !== STOP_WAITING) {
      conn.destroy();
      throw new C10dStoreError(
        `c10d store at ${this.where}: ${what} answered ${r}, not STOP_WAITING (0)`,
        'protocol',
      );
    }
  }

  /**
   * DELETE_KEY is 8 on torch <= 2.1 (after WATCH_KEY) and 7 on torch 2.2. Command 7 with a key tells them apart on a
   * throwaway connection: torch <= 2.1 registers a watch on a key nobody writes and answers one byte
   * KEY_CALLBACK_REGISTERED (3); torch 2.2 deletes that absent key and answers the int64 count 0.
   */
  private async legacyDeleteCommand(): Promise<number> {
    if (this.legacyDelete !== undefined) return this.legacyDelete;
    const conn = await C10dStore.open(this.opts, 'legacy');
    try {
      conn.send(
        new QueryWriter(LEGACY_WATCH_KEY).key(`mptjs/probe/${randomBytes(8).toString('hex')}`).build(),
      );
      const first = await conn.read(
        readU8,
        this.opts.probeMs,
        this.timeout('delete_key probe', this.opts.probeMs),
      );
      if (first === KEY_CALLBACK_REGISTERED) this.legacyDelete = LEGACY_DELETE_KEY.withWatchKey;
      else if (first === 0) this.legacyDelete = LEGACY_DELETE_KEY.withoutWatchKey;
      else {
        throw new C10dStoreError(
          `c10d store at ${this.where}: command 7 answered ${first}; neither torch <= 2.1 nor torch 2.2`,
          'protocol',
        );
      }
      return this.legacyDelete;
    } finally {
      conn.destroy();
    }
  }
}

function toBytes(v: string | Uint8Array): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function checkInteger(v: number, name: string): number {
  if (!Number.isSafeInteger(v)) throw new RangeError(`${name} must be a safe integer, got ${v}`);
  return v;
}
