// Ranks as worker threads (or groups within one thread), connected in a ring: shared-memory slot rings (the
// default) or MessageChannels that transfer each segment's buffer.
import { MessageChannel, type MessagePort, workerData } from 'node:worker_threads';
import { RendezvousError } from '../errors.js';
import type { Link } from '../frame.js';
import type { ProcessGroup } from '../process-group.js';
import { DEFAULT_SEGMENT, RingProcessGroup } from '../ring-group.js';
import { createArenaBuffer, SharedArena } from '../shared-arena.js';
import { checkRank } from './check-rank.js';
import { PortLink } from './port-link.js';
import { createSharedRing, SharedMemoryLink, type SharedRing } from './shared-memory-link.js';

/** How thread ranks exchange data: slots of shared memory (one copy in, read in place) or transferred buffers. */
export type ThreadTransport = 'shared-memory' | 'message-port';
export const THREAD_TRANSPORTS: readonly ThreadTransport[] = ['shared-memory', 'message-port'];

export interface ThreadRingOptions {
  /** Default 'shared-memory'. */
  transport?: ThreadTransport;
  /** Largest payload a shared-memory slot holds (floats); set it to the group's segmentElements. Default 262 144. */
  slotElements?: number;
  /** Slots per direction (a power of two, default 8): how far a sender may run ahead of its receiver. */
  slots?: number;
}

/** What a launcher hands each worker thread (in `workerData.mptjsRing`) to join its ring. */
export interface ThreadRingPorts {
  rank: number;
  worldSize: number;
  /** Port to rank + 1; null when worldSize is 1. */
  next: MessagePort | null;
  /** Port from rank - 1. */
  prev: MessagePort | null;
  /** Shared memory for data to rank + 1 and from rank - 1 (transport 'shared-memory'); the ports then only carry
   * oversized frames and tell when a neighbour's thread is gone. */
  toNext?: SharedRing;
  fromPrev?: SharedRing;
  /** One growable buffer every rank of the ring shares (transport 'shared-memory'): see shared-arena.ts. */
  arena?: SharedArrayBuffer;
}

export interface ThreadGroupOptions {
  timeoutMs: number;
  segmentElements?: number;
}

/** One ThreadRingPorts per rank; transfer each rank's ports to its worker (see `ringTransferList`). */
export function createThreadRing(worldSize: number, opts: ThreadRingOptions = {}): ThreadRingPorts[] {
  checkRank(0, worldSize);
  const transport = opts.transport ?? 'shared-memory';
  if (!THREAD_TRANSPORTS.includes(transport)) {
    throw new RangeError(`unknown thread transport '${transport}' (use ${THREAD_TRANSPORTS.join(' or ')})`);
  }
  const rings: ThreadRingPorts[] = [];
  for (let r = 0; r < worldSize; r++) rings.push({ rank: r, worldSize, next: null, prev: null });
  if (worldSize === 1) return rings;
  const arena = transport === 'shared-memory' ? createArenaBuffer() : null;
  if (arena) for (const ring of rings) ring.arena = arena;
  for (let r = 0; r < worldSize; r++) {
    const { port1, port2 } = new MessageChannel();
    rings[r]!.next = port1;
    rings[(r + 1) % worldSize]!.prev = port2;
    if (transport === 'shared-memory') {
      const ring = createSharedRing(opts.slotElements ?? DEFAULT_SEGMENT, opts.slots);
      rings[r]!.toNext = ring;
      rings[(r + 1) % worldSize]!.fromPrev = ring;
    }
  }
  return rings;
}

export function ringTransferList(ports: ThreadRingPorts): MessagePort[] {
  return [ports.next, ports.prev].filter((p): p is MessagePort => p !== null);
}

export function threadGroupFromPorts(ports: ThreadRingPorts, opts: ThreadGroupOptions): ProcessGroup {
  checkRank(ports.rank, ports.worldSize);
  const { rank, worldSize: w } = ports;
  return new RingProcessGroup({
    rank,
    worldSize: w,
    backend: 'threads',
    next: ports.next ? link((rank + 1) % w, ports.next, ports.toNext, undefined) : null,
    prev: ports.prev ? link((rank - 1 + w) % w, ports.prev, undefined, ports.fromPrev) : null,
    timeoutMs: opts.timeoutMs,
    segmentElements: opts.segmentElements,
    arena: ports.arena ? new SharedArena(ports.arena) : undefined,
  });
}

function link(peer: number, port: MessagePort, out?: SharedRing, inbound?: SharedRing): Link {
  return out || inbound ? new SharedMemoryLink(peer, port, out, inbound) : new PortLink(peer, port);
}

/** The ring ports a launcher passed to this worker thread, or null outside such a worker. */
export function threadRingFromWorkerData(): ThreadRingPorts | null {
  const ring = (workerData as { mptjsRing?: ThreadRingPorts } | null)?.mptjsRing;
  return ring ?? null;
}

/** Joins the ring this worker thread was launched into. */
export function initThreadProcessGroup(opts: ThreadGroupOptions): ProcessGroup {
  const ports = threadRingFromWorkerData();
  if (!ports) {
    throw new RendezvousError(
      "backend 'threads' needs a worker thread started by launchLocal({ mode: 'threads' }) (no ring ports in workerData)",
    );
  }
  return threadGroupFromPorts(ports, opts);
}

/** All ranks of a group inside the calling thread (for tests and single-process tools). */
export function createLocalGroups(
  worldSize: number,
  opts: ThreadGroupOptions & { transport?: ThreadTransport },
): ProcessGroup[] {
  const rings = createThreadRing(worldSize, {
    transport: opts.transport,
    slotElements: opts.segmentElements,
  });
  return rings.map((ports) => threadGroupFromPorts(ports, opts));
}
