// A small key-value store for rendezvous, like torch.distributed's TCPStore: rank 0 hosts it on MASTER_ADDR:
// MASTER_PORT; every rank (rank 0 included) connects as a client. Messages are length-prefixed JSON.
// `get` and `wait` block until the keys exist; `add` is an atomic counter. The server also checks that every
// client agrees on the world size and that no rank joins twice.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { RendezvousError, seconds } from '../errors.js';

type RequestBody =
  | { cmd: 'hello'; rank: number; worldSize: number }
  | { cmd: 'set'; key: string; value: string }
  | { cmd: 'get'; key: string }
  | { cmd: 'add'; key: string; delta: number }
  | { cmd: 'check'; key: string };
type Request = RequestBody & { id: number };

interface Response {
  id: number;
  ok: boolean;
  value?: string | number | boolean;
  error?: string;
}

/** Splits a stream into length-prefixed messages. */
function onMessages(socket: Socket, handle: (msg: unknown) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 4) {
      const len = buf.readUInt32LE(0);
      if (len > 64 << 20) {
        socket.destroy(new Error(`store message of ${len} bytes is too large (not a store peer?)`));
        return;
      }
      if (buf.length < 4 + len) break;
      const body = buf.subarray(4, 4 + len).toString('utf8');
      buf = buf.subarray(4 + len);
      let msg: unknown;
      try {
        msg = JSON.parse(body);
      } catch {
        socket.destroy(new Error('store peer sent a message that is not JSON'));
        return;
      }
      handle(msg);
    }
  });
}

function sendMessage(socket: Socket, msg: unknown): void {
  const body = Buffer.from(JSON.stringify(msg), 'utf8');
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32LE(body.length, 0);
  socket.write(Buffer.concat([head, body]));
}

export class TcpStoreServer {
  private readonly data = new Map<string, string>();
  private readonly waiting = new Map<string, Array<() => void>>();
  private readonly ranks = new Set<number>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly worldSize: number,
  ) {
    server.on('connection', (s) => this.serve(s));
  }

  /** Hosts the store; a port already in use is a RendezvousError saying so. */
  static listen(host: string, port: number, worldSize: number): Promise<TcpStoreServer> {
    const server = createServer();
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why =
          err.code === 'EADDRINUSE'
            ? 'address already in use (another job or store on this port? pick another MASTER_PORT)'
            : err.message;
        reject(new RendezvousError(`rank 0 could not host the rendezvous store on ${host}:${port}: ${why}`));
      });
      server.listen(port, host, () => resolve(new TcpStoreServer(server, worldSize)));
    });
  }

  get port(): number {
    const addr = this.server.address();
    return typeof addr === 'object' && addr ? addr.port : 0;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    onMessages(socket, (msg) => {
      const req = msg as Request;
      const reply = (r: Omit<Response, 'id'>) => {
        if (!socket.destroyed) sendMessage(socket, { id: req.id, ...r });
      };
      this.handle(req, reply);
    });
  }

  /** The reply to a request, or null when it waits for a key (`get`) and is answered later. */
  private handle(req: Request, reply: (r: Omit<Response, 'id'>) => void): void {
    const now = this.answer(req, reply);
    if (now) reply(now);
  }

  private answer(req: Request, reply: (r: Omit<Response, 'id'>) => void): Omit<Response, 'id'> | null {
    switch (req.cmd) {
      case 'hello':
        if (req.worldSize !== this.worldSize) {
          return {
            ok: false,
            error: `rank ${req.rank} has WORLD_SIZE=${req.worldSize} but the store (rank 0) has WORLD_SIZE=${this.worldSize}`,
          };
        }
        if (this.ranks.has(req.rank)) {
          return { ok: false, error: `rank ${req.rank} joined twice (two processes with the same RANK?)` };
        }
        this.ranks.add(req.rank);
        return { ok: true };
      case 'set':
        this.put(req.key, req.value);
        return { ok: true };
      case 'get': {
        const value = this.data.get(req.key);
        if (value !== undefined) return { ok: true, value };
        const list = this.waiting.get(req.key) ?? [];
        list.push(() => reply({ ok: true, value: this.data.get(req.key)! }));
        this.waiting.set(req.key, list);
        return null;
      }
      case 'add': {
        const next = Number(this.data.get(req.key) ?? '0') + req.delta;
        this.put(req.key, String(next));
        return { ok: true, value: next };
      }
      case 'check':
        return { ok: true, value: this.data.has(req.key) };
      default:
        return { ok: false, error: `unknown store command ${JSON.stringify((req as { cmd: unknown }).cmd)}` };
    }
  }

  private put(key: string, value: string): void {
    this.data.set(key, value);
    for (const wake of this.waiting.get(key) ?? []) wake();
    this.waiting.delete(key);
  }
}

export class TcpStoreClient {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: Response) => void; reject: (e: Error) => void }
  >();
  private closedReason: string | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly where: string,
    private readonly timeoutMs: number,
  ) {
    onMessages(socket, (msg) => {
      const res = msg as Response;
      this.pending.get(res.id)?.resolve(res);
      this.pending.delete(res.id);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closedReason = `the rendezvous store at ${where} closed the connection`;
      for (const p of this.pending.values()) p.reject(new RendezvousError(this.closedReason));
      this.pending.clear();
    });
  }

  /** Connects, retrying while the store is not up yet (rank 0 may start last), until `timeoutMs`. */
  static async connect(host: string, port: number, timeoutMs: number): Promise<TcpStoreClient> {
    const where = `${host}:${port}`;
    const deadline = performance.now() + timeoutMs;
    let lastError = '';
    while (performance.now() < deadline) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect({ host, port });
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        socket.setNoDelay(true);
        return new TcpStoreClient(socket, where, timeoutMs);
      } catch (err) {
        lastError = (err as NodeJS.ErrnoException).code ?? String(err);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new RendezvousError(
      `could not reach the rendezvous store at ${where} within ${seconds(timeoutMs)} (${lastError})`,
    );
  }

  /** The local address of the connection to the store: the interface this machine is reachable on. */
  get localAddress(): string {
    return this.socket.localAddress ?? '127.0.0.1';
  }

  async hello(rank: number, worldSize: number): Promise<void> {
    await this.request({ cmd: 'hello', rank, worldSize }, `register rank ${rank}`);
  }

  async set(key: string, value: string): Promise<void> {
    await this.request({ cmd: 'set', key, value }, `set ${key}`);
  }

  /** Waits until `key` is set, then returns its value. */
  async get(key: string, timeoutMs = this.timeoutMs): Promise<string> {
    return String((await this.request({ cmd: 'get', key }, `get ${key}`, timeoutMs)).value);
  }

  async add(key: string, delta: number): Promise<number> {
    return Number((await this.request({ cmd: 'add', key, delta }, `add ${key}`)).value);
  }

  async check(key: string): Promise<boolean> {
    return Boolean((await this.request({ cmd: 'check', key }, `check ${key}`)).value);
  }

  close(): void {
    this.socket.destroy();
  }

  private request(body: RequestBody, what: string, timeoutMs = this.timeoutMs): Promise<Response> {
    if (this.closedReason) return Promise.reject(new RendezvousError(this.closedReason));
    const id = this.nextId++;
    return new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new RendezvousError(
            `rendezvous store at ${this.where}: ${what} timed out after ${seconds(timeoutMs)}`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          if (r.ok) resolve(r);
          else reject(new RendezvousError(`rendezvous store at ${this.where}: ${r.error}`));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      sendMessage(this.socket, { id, ...body });
    });
  }
}
