// Rendezvous over TCP in the torchrun convention: rank 0 hosts the store (or, under torchrun, every rank uses the
// c10d store its agent serves), each rank listens on an ephemeral port and publishes `host:port` under
// `addr/<rank>`, connects to rank + 1 and accepts rank - 1. After that the store is idle; collectives run on the
// ring sockets.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { RendezvousError, seconds } from '../errors.js';
import { type Frame, FrameKind } from '../frame.js';
import type { ProcessGroup } from '../process-group.js';
import type { C10dProtocol } from '../rendezvous/c10d-store.js';
import { agentStore, ownStore, type RendezvousStore } from '../rendezvous/rendezvous-store.js';
import { RingProcessGroup } from '../ring-group.js';
import { checkRank } from './check-rank.js';
import { SocketLink } from './socket-link.js';
import { FrameParser, writeFrame } from './tcp-frames.js';
import { TcpStoreClient, TcpStoreServer } from './tcp-store.js';

export interface TcpGroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Default per-collective timeout (ms). */
  timeoutMs: number;
  /** How long rendezvous may take (ms); defaults to `timeoutMs`. */
  rendezvousTimeoutMs?: number;
  /** Address to listen on for ring peers; default 127.0.0.1 when MASTER_ADDR is loopback, else 0.0.0.0. */
  listenHost?: string;
  segmentElements?: number;
  /**
   * Rendezvous through the c10d TCPStore that already serves MASTER_ADDR:MASTER_PORT (torchrun's agent) instead of
   * hosting our own there; keys go under `namespace`.
   */
  agentStore?: { namespace: string; protocol?: 'auto' | C10dProtocol };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export async function initTcpProcessGroup(opts: TcpGroupOptions): Promise<ProcessGroup> {
  const { rank, worldSize: w, masterAddr, masterPort } = opts;
  checkRank(rank, w);
  if (!Number.isInteger(masterPort) || masterPort < 0 || masterPort > 65535) {
    throw new RendezvousError(`MASTER_PORT ${masterPort} is not a TCP port (0..65535)`);
  }
  const rdvTimeout = opts.rendezvousTimeoutMs ?? opts.timeoutMs;
  const store =
    rank === 0 && !opts.agentStore ? await TcpStoreServer.listen(masterAddr, masterPort, w) : null;
  let client: RendezvousStore | null = null;
  let listener: Server | null = null;
  const sockets: Socket[] = [];
  try {
    client = opts.agentStore
      ? await agentStore({ host: masterAddr, port: masterPort, timeoutMs: rdvTimeout, ...opts.agentStore })
      : ownStore(await TcpStoreClient.connect(masterAddr, store?.port ?? masterPort, rdvTimeout));
    await client.register(rank, w);
    const storeClient = client;
    const cleanup = async () => {
      storeClient.close();
      await store?.close();
    };
    if (w === 1) {
      return new RingProcessGroup({
        rank,
        worldSize: 1,
        backend: 'tcp',
        next: null,
        prev: null,
        ...common(opts),
        onDestroy: cleanup,
      });
    }
    const listenHost = opts.listenHost ?? (LOOPBACK.has(masterAddr) ? '127.0.0.1' : '0.0.0.0');
    listener = await listen(listenHost);
    const port = (listener.address() as { port: number }).port;
    const host = listenHost === '0.0.0.0' ? client.localAddress : listenHost;
    const next = (rank + 1) % w;
    const prev = (rank - 1 + w) % w;
    const accepted = acceptPeer(listener, prev, rank, w, rdvTimeout);
    accepted.catch(() => undefined); // awaited below; may fail first if an earlier step throws
    await client.publish(rank, `${host}:${port}`);
    const nextAddr = await client.lookup(next, rdvTimeout);
    const nextLink = await connectPeer(nextAddr, next, rank, w, rdvTimeout, sockets);
    const prevLink = await accepted;
    listener.close();
    listener = null;
    const group = new RingProcessGroup({
      rank,
      worldSize: w,
      backend: 'tcp',
      next: nextLink,
      prev: prevLink,
      ...common(opts),
      onDestroy: cleanup,
    });
    // Every ring link is up once a barrier goes round.
    await group.barrier({ timeoutMs: rdvTimeout });
    return group;
  } catch (err) {
    listener?.close();
    for (const s of sockets) s.destroy();
    client?.close();
    await store?.close();
    throw err;
  }
}

function common(opts: TcpGroupOptions) {
  return { timeoutMs: opts.timeoutMs, segmentElements: opts.segmentElements };
}

function listen(host: string): Promise<Server> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (err) =>
      reject(new RendezvousError(`could not listen for ring peers on ${host}: ${err.message}`)),
    );
    server.listen(0, host, () => resolve(server));
  });
}

interface Hello {
  rank: number;
  worldSize: number;
}

function connectPeer(
  addr: string,
  peer: number,
  rank: number,
  worldSize: number,
  timeoutMs: number,
  sockets: Socket[],
): Promise<SocketLink> {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i);
  const port = Number(addr.slice(i + 1));
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    sockets.push(socket);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new RendezvousError(
          `rank ${rank} could not connect to rank ${peer} at ${addr} within ${seconds(timeoutMs)}`,
        ),
      );
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new RendezvousError(`rank ${rank} could not connect to rank ${peer} at ${addr}: ${err.message}`),
      );
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      const hello: Hello = { rank, worldSize };
      writeFrame(socket, { kind: FrameKind.hello, seq: 0, step: 0, seg: 0, meta: JSON.stringify(hello) });
      const parser = new FrameParser(() => undefined);
      socket.on('data', (chunk: Buffer) => parser.push(chunk));
      resolve(new SocketLink(peer, socket, parser));
    });
  });
}

/** Waits for rank `prev` to connect and say hello; anything else connecting is a clear error. */
function acceptPeer(
  server: Server,
  prev: number,
  rank: number,
  worldSize: number,
  timeoutMs: number,
): Promise<SocketLink> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new RendezvousError(`rank ${rank}: rank ${prev} did not connect within ${seconds(timeoutMs)}`),
        ),
      timeoutMs,
    );
    timer.unref();
    server.on('connection', (socket) => {
      socket.setNoDelay(true);
      const parser = new FrameParser((f: Frame) => {
        if (f.kind !== FrameKind.hello) {
          socket.destroy();
          return;
        }
        const hello = JSON.parse(f.meta ?? '{}') as Hello;
        clearTimeout(timer);
        if (hello.rank !== prev || hello.worldSize !== worldSize) {
          socket.destroy();
          reject(
            new RendezvousError(
              `rank ${rank} expected rank ${prev} of ${worldSize} to connect, got rank ${hello.rank} of ${hello.worldSize}`,
            ),
          );
          return;
        }
        resolve(new SocketLink(prev, socket, parser));
      });
      socket.on('data', (chunk: Buffer) => parser.push(chunk));
      socket.on('error', () => undefined);
    });
  });
}
