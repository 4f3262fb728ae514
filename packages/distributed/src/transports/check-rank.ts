import { RendezvousError } from '../errors.js';

export function checkRank(rank: number, worldSize: number): void {
  if (!Number.isInteger(worldSize) || worldSize < 1) {
    throw new RendezvousError(`WORLD_SIZE must be a positive integer, got ${worldSize}`);
  }
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) {
    throw new RendezvousError(
      `RANK ${rank} is out of range for WORLD_SIZE ${worldSize} (expected 0..${worldSize - 1})`,
    );
  }
}
