// What TCP rendezvous needs from a store: check that this rank belongs (world size, not joined twice), publish its
// ring address, look up another rank's. Two stores provide it: our own (rank 0 hosts it on MASTER_PORT) and the
// c10d TCPStore a torchrun agent already serves there (TORCHELASTIC_USE_AGENT_STORE=True).
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { RendezvousError } from '../errors.js';
import type { TcpStoreClient } from '../transports/tcp-store.js';
import { type C10dProtocol, C10dStore } from './c10d-store.js';

export interface RendezvousStore {
  /** The interface on which this machine reaches the store's host (what peers can reach it on, too). */
  readonly localAddress: string;
  register(rank: number, worldSize: number): Promise<void>;
  publish(rank: number, addr: string): Promise<void>;
  lookup(rank: number, timeoutMs: number): Promise<string>;
  close(): void;
}

/** Our own store's client, as a RendezvousStore. */
export function ownStore(client: TcpStoreClient): RendezvousStore {
  return {
    get localAddress() {
      return client.localAddress;
    },
    register: (rank, worldSize) => client.hello(rank, worldSize),
    publish: (rank, addr) => client.set(`addr/${rank}`, addr),
    lookup: (rank, timeoutMs) => client.get(`addr/${rank}`, timeoutMs),
    close: () => client.close(),
  };
}

export interface AgentStoreOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /**
   * Prefix of every key: the job and the attempt (`mptjs/<TORCHELASTIC_RUN_ID>/<TORCHELASTIC_RESTART_COUNT>`), so a
   * restarted group never reads the addresses of the attempt before it: the agent's store outlives its workers.
   */
  namespace: string;
  protocol?: 'auto' | C10dProtocol;
}

/** The namespace of a torchelastic attempt's keys. */
export function agentNamespace(runId: string, restartCount: number): string {
  return `mptjs/${runId}/${restartCount}`;
}

/** Rendezvous through a torchrun agent's c10d store. */
export async function agentStore(opts: AgentStoreOptions): Promise<RendezvousStore> {
  let store: C10dStore;
  try {
    store = await C10dStore.connect(opts);
  } catch (err) {
    throw new RendezvousError(
      `could not use torchrun's store (TORCHELASTIC_USE_AGENT_STORE=True): ${(err as Error).message}`,
    );
  }
  const ns = opts.namespace;
  return {
    get localAddress() {
      return store.localAddress;
    },
    async register(rank, worldSize) {
      // compare_set from "absent" keeps the first writer's value: every later rank sees what the first one set.
      const agreed = (await store.compareSet(`${ns}/world_size`, '', String(worldSize))).toString();
      if (agreed !== String(worldSize)) {
        throw new RendezvousError(
          `rank ${rank} has WORLD_SIZE=${worldSize} but the ranks before it in this attempt have WORLD_SIZE=${agreed}`,
        );
      }
      const me = `${hostname()} pid ${process.pid} ${randomBytes(4).toString('hex')}`;
      const owner = (await store.compareSet(`${ns}/rank/${rank}`, '', me)).toString();
      if (owner !== me) {
        throw new RendezvousError(
          `rank ${rank} joined twice (two processes with the same RANK?): ${owner.replace(/ [0-9a-f]{8}$/, '')} has it already`,
        );
      }
    },
    publish: (rank, addr) => store.set(`${ns}/addr/${rank}`, addr),
    async lookup(rank, timeoutMs) {
      try {
        return await store.getString(`${ns}/addr/${rank}`, timeoutMs);
      } catch (err) {
        if ((err as { kind?: string }).kind === 'timeout') {
          throw new RendezvousError(
            `rank ${rank} did not publish its address in torchrun's store at ${store.where} within ${(timeoutMs / 1000).toFixed(2)}s (key ${ns}/addr/${rank})`,
          );
        }
        throw err;
      }
    },
    close: () => store.close(),
  };
}
