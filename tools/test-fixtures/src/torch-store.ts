// A real c10d TCPStore server from PyTorch (Debian's python3-torch), kept alive as a child process: the store that
// torchrun's agent serves on MASTER_PORT, for tests. Lines on its stdin let a test read and write keys through
// torch's own client (`get KEY` prints the value in hex, `set KEY HEX`), to check that both sides name the same
// entries.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const PYTHON = process.env['MPTJS_PYTHON'] ?? '/usr/bin/python3';

const SERVER = `
import sys, datetime
import torch
import torch.distributed as dist
store = dist.TCPStore("127.0.0.1", int(sys.argv[1]), 1, True, datetime.timedelta(seconds=600), wait_for_workers=False)
print("ready", store.port, torch.__version__, flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "get":
        print("value", store.get(args[0]).hex(), flush=True)
    elif cmd == "set":
        store.set(args[0], bytes.fromhex(args[1]))
        print("ok", flush=True)
`;

/**
 * torchrun itself: `python3 TORCHRUN_SCRIPT ARGS...` is `torchrun ARGS...`, with a fix for Debian's torch 1.13 on
 * Python 3.11 applied where it is needed (see the script).
 */
export const TORCHRUN_SCRIPT = fileURLToPath(new URL('./torchrun.py', import.meta.url));

let cached: boolean | undefined;

/** Whether `python3 -c 'import torch'` works here. */
export function torchAvailable(): boolean {
  cached ??=
    spawnSync(PYTHON, ['-c', 'import torch.distributed'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
  return cached;
}

/**
 * True when tests that need a torch store can run. Without python3-torch: a failure under CI=true (the setup
 * script installs it), a visible skip elsewhere.
 */
export function torchStoreTestsRun(): boolean {
  if (torchAvailable()) return true;
  const message = `${PYTHON} cannot import torch (install python3-torch: scripts/setup.sh does)`;
  if (process.env['CI'] === 'true') throw new Error(message);
  console.warn(`[skip] ${message}`);
  return false;
}

export interface TorchStore {
  port: number;
  torchVersion: string;
  process: ChildProcess;
  /** Reads a key through torch's client (waits for it like `store.get`). */
  get(key: string): Promise<Buffer>;
  set(key: string, value: string | Uint8Array): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `torch.distributed.TCPStore(is_master=True)` on `port` (0: any free port) and waits until it listens. */
export function startTorchStore(port = 0): Promise<TorchStore> {
  const child = spawn(PYTHON, ['-c', SERVER, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(line: string) => void> = [];
  const nextLine = () => new Promise<string>((resolve) => waiting.push(resolve));
  lines.on('line', (line) => waiting.shift()?.(line));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise<TorchStore>((resolve, reject) => {
    child.once('exit', (code) =>
      reject(new Error(`torch TCPStore server exited with ${code}: ${stderr.trim()}`)),
    );
    void nextLine().then((ready) => {
      const [, p, torchVersion] = ready.split(' ');
      let queue: Promise<unknown> = Promise.resolve();
      const ask = (line: string) => {
        const answer = queue.then(() => {
          const reply = nextLine();
          child.stdin!.write(`${line}\n`);
          return reply;
        });
        queue = answer.catch(() => undefined);
        return answer;
      };
      resolve({
        port: Number(p),
        torchVersion: torchVersion ?? '',
        process: child,
        get: async (key) => Buffer.from((await ask(`get ${key}`)).split(' ')[1] ?? '', 'hex'),
        set: async (key, value) => {
          await ask(`set ${key} ${Buffer.from(value).toString('hex')}`);
        },
        stop: async () => {
          child.stdin!.end();
          child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}
