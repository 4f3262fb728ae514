// The c10d store client against a real torch.distributed.TCPStore server (python3-torch as a child process):
// every operation, interoperation with torch's own client, and the errors for a refused port, a key that never
// comes and a peer that is not a c10d store.
import { createServer } from 'node:net';
import { startTorchStore, type TorchStore, torchStoreTestsRun } from '@mptjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../launch.js';
import { C10dStore, C10dStoreError, detectC10dProtocol } from './c10d-store.js';
import { COMMANDS, QueryWriter, VALIDATION_MAGIC } from './c10d-wire.js';

describe('c10d wire format', () => {
  it('lays out queries as torch reads them: command byte, uint64 lengths, "/"-prefixed keys, little-endian', () => {
    const set = new QueryWriter(COMMANDS.validated.set).key('k').bytes(Buffer.from('vv')).build();
    expect([...set]).toEqual([1, 2, 0, 0, 0, 0, 0, 0, 0, 0x2f, 0x6b, 2, 0, 0, 0, 0, 0, 0, 0, 0x76, 0x76]);
    const validate = new QueryWriter(COMMANDS.validated.validate).u32(VALIDATION_MAGIC).build();
    expect(validate.toString('hex')).toBe('00cef7853c');
    const add = new QueryWriter(COMMANDS.legacy.add).key('n').i64(-2n).build();
    expect(add.toString('hex')).toBe(`03${'0200000000000000'}2f6e${'feffffffffffffff'}`);
    expect(() => new QueryWriter(0).key('x'.repeat(9000))).toThrow(
      'c10d store key of 9001 bytes exceeds the 8192-byte limit',
    );
  });
});

describe.runIf(torchStoreTestsRun())('c10d store client against torch.distributed.TCPStore', () => {
  let server: TorchStore;
  let store: C10dStore;

  beforeAll(async () => {
    server = await startTorchStore();
    store = await C10dStore.connect({ host: '127.0.0.1', port: server.port, timeoutMs: 5000 });
  });
  afterAll(async () => {
    store?.close();
    await server?.stop();
  });

  it("detects the server's protocol (torch < 2.3 here: legacy)", async () => {
    const major = Number(server.torchVersion.split('.')[0]);
    const minor = Number(server.torchVersion.split('.')[1]);
    const want = major > 2 || (major === 2 && minor >= 3) ? 'validated' : 'legacy';
    expect(await detectC10dProtocol('127.0.0.1', server.port, 5000)).toBe(want);
    expect(store.protocol).toBe(want);
  });

  it('set and get, both ways with torch’s own client', async () => {
    await store.set('mptjs/a', 'hello');
    expect(await store.getString('mptjs/a')).toBe('hello');
    expect((await server.get('mptjs/a')).toString()).toBe('hello');
    await server.set('mptjs/from-torch', Buffer.from([0, 1, 255]));
    expect([...(await store.get('mptjs/from-torch'))]).toEqual([0, 1, 255]);
    await store.set('mptjs/empty', '');
    expect((await store.get('mptjs/empty')).length).toBe(0);
  });

  it('a set reaches the server even when the client closes right after it', async () => {
    const c = await C10dStore.connect({
      host: '127.0.0.1',
      port: server.port,
      timeoutMs: 5000,
      protocol: store.protocol,
    });
    await c.set('mptjs/last-words', 'bye');
    c.close();
    expect((await server.get('mptjs/last-words')).toString()).toBe('bye');
  });

  it('get blocks until another client sets the key', async () => {
    const other = await C10dStore.connect({
      host: '127.0.0.1',
      port: server.port,
      timeoutMs: 5000,
      protocol: store.protocol,
    });
    try {
      const pending = store.getString('mptjs/later');
      await new Promise((r) => setTimeout(r, 50));
      await other.set('mptjs/later', 'now');
      expect(await pending).toBe('now');
    } finally {
      other.close();
    }
  });

  it('add is an atomic counter that torch reads as a decimal string', async () => {
    expect(await store.add('mptjs/count', 2)).toBe(2);
    expect(await store.add('mptjs/count', -5)).toBe(-3);
    expect((await server.get('mptjs/count')).toString()).toBe('-3');
    await expect(store.add('mptjs/count', 0.5)).rejects.toThrow('delta must be a safe integer, got 0.5');
  });

  it('compare_set swaps only from the expected value', async () => {
    expect((await store.compareSet('mptjs/cas', '', 'first')).toString()).toBe('first');
    expect((await store.compareSet('mptjs/cas', '', 'second')).toString()).toBe('first');
    expect((await store.compareSet('mptjs/cas', 'first', 'third')).toString()).toBe('third');
  });

  it('check and wait over several keys', async () => {
    expect(await store.check(['mptjs/a', 'mptjs/count'])).toBe(true);
    expect(await store.check(['mptjs/a', 'mptjs/absent'])).toBe(false);
    const waiting = store.wait(['mptjs/w1', 'mptjs/w2'], 5000);
    await server.set('mptjs/w1', '1');
    await server.set('mptjs/w2', '2');
    await waiting;
  });

  it('delete_key and num_keys', async () => {
    await store.set('mptjs/doomed', 'x');
    const before = await store.numKeys();
    expect(await store.deleteKey('mptjs/doomed')).toBe(true);
    expect(await store.deleteKey('mptjs/doomed')).toBe(false);
    expect(await store.numKeys()).toBe(before - 1);
    expect(await store.check(['mptjs/doomed'])).toBe(false);
  });

  it('a key that never comes times out naming it, and the client goes on working', async () => {
    await expect(store.get('mptjs/never', 150)).rejects.toThrow(
      `c10d store at 127.0.0.1:${server.port}: get 'mptjs/never' timed out after 0.15s`,
    );
    await expect(store.wait(['mptjs/never', 'mptjs/a'], 100)).rejects.toMatchObject({ kind: 'timeout' });
    expect(await store.getString('mptjs/a')).toBe('hello');
  });
});

describe('c10d store client errors', () => {
  it('a refused port is reported with the address after retrying until the deadline', async () => {
    const port = await freePort();
    const t0 = performance.now();
    const err = await C10dStore.connect({
      host: '127.0.0.1',
      port,
      timeoutMs: 400,
      protocol: 'legacy',
    }).catch((e) => e);
    expect(err).toBeInstanceOf(C10dStoreError);
    expect(err.kind).toBe('connect');
    expect(err.message).toBe(
      `could not connect to the c10d store at 127.0.0.1:${port} within 0.40s (ECONNREFUSED: nothing listens there; is MASTER_ADDR:MASTER_PORT the store?)`,
    );
    expect(performance.now() - t0).toBeGreaterThan(250);
  });

  it('a peer that answers with nonsense is a protocol error', async () => {
    // Not a c10d store: it answers every query with a length far beyond any store value.
    const bogus = createServer((s) => s.on('data', () => s.write(Buffer.alloc(8, 0xff))));
    await new Promise<void>((r) => bogus.listen(0, '127.0.0.1', () => r()));
    const port = (bogus.address() as { port: number }).port;
    try {
      const client = await C10dStore.connect({
        host: '127.0.0.1',
        port,
        timeoutMs: 2000,
        protocol: 'legacy',
      });
      await expect(client.compareSet('k', '', 'v')).rejects.toThrow(
        /reply announces 18446744073709551615 bytes, more than any store value \(not a c10d TCPStore\?\)/,
      );
      await expect(client.check(['k'])).rejects.toThrow('check answered 255, not READY (0) or NOT_READY (1)');
      client.close();
      await expect(client.set('k', 'v')).rejects.toMatchObject({ kind: 'closed' });
    } finally {
      bogus.close();
    }
  });

  it('rejects ports and protocols that cannot be right', async () => {
    await expect(C10dStore.connect({ host: '127.0.0.1', port: 70000, timeoutMs: 100 })).rejects.toThrow(
      'c10d store port 70000 is not a TCP port (1..65535)',
    );
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      await expect(
        C10dStore.connect({ host: '127.0.0.1', port, timeoutMs: 100, protocol: 'v9' as 'legacy' }),
      ).rejects.toThrow("unknown c10d store protocol 'v9' (use auto, legacy or validated)");
    } finally {
      server.close();
    }
  });
});
