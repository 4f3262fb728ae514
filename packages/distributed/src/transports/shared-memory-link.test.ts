import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { type Frame, FrameKind } from '../frame.js';
import { createSharedRing, SharedMemoryLink } from './shared-memory-link.js';
import { createThreadRing, threadGroupFromPorts } from './threads.js';

function pair(slotElements: number, slots: number) {
  const { port1, port2 } = new MessageChannel();
  const ring = createSharedRing(slotElements, slots);
  const sender = new SharedMemoryLink(1, port1, ring, undefined);
  const receiver = new SharedMemoryLink(0, port2, undefined, ring);
  const got: Frame[] = [];
  // A slot's contents are only valid until it is released: record them on arrival.
  const values: number[][] = [];
  receiver.attach({
    onFrame: (f) => {
      got.push(f);
      values.push(Array.from(f.payload ?? []));
    },
    onClose: () => undefined,
  });
  sender.attach({ onFrame: () => undefined, onClose: () => undefined });
  return { sender, receiver, got, values };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(cond()).toBe(true);
};

describe('shared-memory link', () => {
  it('queues frames while every slot is taken and sends them as the receiver releases slots', async () => {
    const { sender, receiver, got, values } = pair(4, 2);
    for (let i = 0; i < 6; i++)
      sender.sendCopy({ kind: FrameKind.data, seq: 1, step: 0, seg: i }, new Float32Array([i, i, i]));
    await until(() => got.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBe(2); // two slots, nothing freed yet
    // Slot payloads are views of shared memory until released; release out of order.
    expect((got[1] as Frame).payload!.buffer).toBeInstanceOf(SharedArrayBuffer);
    (got[1] as Frame).release!();
    await new Promise((r) => setTimeout(r, 20));
    expect(got.length).toBe(2); // slot 0 still held, so slot 1 is not reusable yet
    (got[0] as Frame).release!();
    await until(() => got.length === 4);
    (got[2] as Frame).release!();
    (got[3] as Frame).release!();
    await until(() => got.length === 6);
    expect(got.map((f, i) => [f.seg, values[i]])).toEqual([0, 1, 2, 3, 4, 5].map((i) => [i, [i, i, i]]));
    sender.close();
    receiver.close();
  });

  it('a queued frame keeps its own copy: the caller may reuse its buffer at once', async () => {
    const { sender, receiver, got, values } = pair(2, 2);
    const buf = new Float32Array([1, 2]);
    for (let i = 0; i < 3; i++) {
      buf.fill(i);
      sender.sendCopy({ kind: FrameKind.data, seq: 1, step: 0, seg: i }, buf);
    }
    buf.fill(99);
    await until(() => got.length === 2);
    (got[0] as Frame).release!();
    await until(() => got.length === 3);
    expect(values).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
    ]);
    sender.close();
    receiver.close();
  });

  it('frames larger than a slot, and control frames, go over the port', async () => {
    const { sender, receiver, got } = pair(2, 2);
    sender.sendCopy({ kind: FrameKind.data, seq: 1, step: 0, seg: 0 }, new Float32Array([1, 2, 3, 4, 5]));
    sender.send({ kind: FrameKind.abort, seq: 1, step: 0, seg: 0, meta: '{"why":"x"}' });
    sender.send({ kind: FrameKind.header, seq: 2, step: 0, seg: 0, meta: 'é'.repeat(3000) });
    await until(() => got.length === 3);
    const big = got.find((f) => f.kind === FrameKind.data)!;
    expect(Array.from(big.payload!)).toEqual([1, 2, 3, 4, 5]);
    expect(big.payload!.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    expect(got.find((f) => f.kind === FrameKind.abort)!.meta).toBe('{"why":"x"}');
    expect(got.find((f) => f.kind === FrameKind.header)!.meta).toBe('é'.repeat(3000));
    sender.close();
    receiver.close();
  });

  it('a receiver learns that its peer went away although shared memory cannot tell it', async () => {
    const { sender, receiver } = pair(2, 2);
    const closed = new Promise<string>((resolve) =>
      receiver.attach({ onFrame: () => undefined, onClose: resolve }),
    );
    sender.close();
    expect(await closed).toMatch(/closed its connection/);
  });

  it('collectives with more segments than slots, and segments larger than a slot, stay exact', async () => {
    for (const [slotElements, segment] of [
      [7, 7],
      [3, 7],
    ] as const) {
      const rings = createThreadRing(3, { slotElements, slots: 2 });
      const groups = rings.map((p) => threadGroupFromPorts(p, { timeoutMs: 5000, segmentElements: segment }));
      const n = 3 * 101;
      const inputs = groups.map((g) => Float32Array.from({ length: n }, (_, i) => (i % 17) + g.rank));
      const sums = await Promise.all(groups.map((g, r) => g.allReduce(inputs[r]!.slice())));
      const want = Array.from({ length: n }, (_, i) => 3 * (i % 17) + 3);
      for (const s of sums) expect(Array.from(s)).toEqual(want);
      const shards = await Promise.all(groups.map((g, r) => g.reduceScatter(inputs[r]!)));
      for (const [r, s] of shards.entries())
        expect(Array.from(s)).toEqual(want.slice(r * 101, (r + 1) * 101));
      const gathered = await Promise.all(groups.map((g, r) => g.allGather(inputs[r]!)));
      for (const gth of gathered) expect(gth.subarray(n, 2 * n)).toEqual(inputs[1]);
      await Promise.all(groups.map((g) => g.destroy()));
    }
  });
});
