// Ranks as worker threads (or groups within one thread), connected in a ring of MessageChannels.
import { MessageChannel, type MessagePort, workerData } from 'node:worker_threads';
import { RendezvousError } from '../errors.js';
import type { ProcessGroup } from '../process-group.js';
import { RingProcessGroup } from '../ring-group.js';
import { checkRank } from './check-rank.js';
import { PortLink } from './port-link.js';

/** What a launcher hands each worker thread (in `workerData.mptjsRing`) to join its ring. */
export interface ThreadRingPorts {
  rank: number;
  worldSize: number;
  /** Port to rank + 1; null when worldSize is 1. */
  next: MessagePort | null;
  /** Port from rank - 1. */
  prev: MessagePort | null;
}

export interface ThreadGroupOptions {
  timeoutMs: number;
  segmentElements?: number;
}

/** One ThreadRingPorts per rank; transfer each rank's ports to its worker (see `ringTransferList`). */
export function createThreadRing(worldSize: number): ThreadRingPorts[] {
  checkRank(0, worldSize);
  const rings: ThreadRingPorts[] = [];
  for (let r = 0; r < worldSize; r++) rings.push({ rank: r, worldSize, next: null, prev: null });
  if (worldSize === 1) return rings;
  for (let r = 0; r < worldSize; r++) {
    const { port1, port2 } = new MessageChannel();
    rings[r]!.next = port1;
    rings[(r + 1) % worldSize]!.prev = port2;
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
    next: ports.next ? new PortLink((rank + 1) % w, ports.next) : null,
    prev: ports.prev ? new PortLink((rank - 1 + w) % w, ports.prev) : null,
    timeoutMs: opts.timeoutMs,
    segmentElements: opts.segmentElements,
  });
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
export function createLocalGroups(worldSize: number, opts: ThreadGroupOptions): ProcessGroup[] {
  return createThreadRing(worldSize).map((ports) => threadGroupFromPorts(ports, opts));
}
