/**
 * Downloads models from the Hugging Face hub into its standard cache, so Python tools and this one share files:
 * `<cache>/models--org--name/{blobs/<etag>, refs/<revision>, snapshots/<commit>/<file> -> ../../blobs/<etag>}`.
 * Honors HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE=1; downloads resume from `.incomplete`
 * files with HTTP Range.
 */
import { createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { HubError } from './errors.js';
import { type ProgressSink, progressBar, silentProgress } from './progress.js';

export interface ResolveModelOptions {
  /** Hub base URL; default `$HF_ENDPOINT` or https://huggingface.co. */
  endpoint?: string;
  /** Bearer token; default `$HF_TOKEN` (or `$HUGGING_FACE_HUB_TOKEN`). */
  token?: string;
  /** Cache root; default `$HF_HUB_CACHE`, `$HF_HOME/hub` or `~/.cache/huggingface/hub`. */
  cacheDir?: string;
  /** Use the cache only; default true when `$HF_HUB_OFFLINE` is 1 / true. */
  offline?: boolean;
  /** Files to fetch from the repo listing; default: top-level .json files plus one weight layout (`model*.safetensors` if present, else `pytorch_model*.bin`). */
  files?: (siblings: string[]) => string[];
  /** Progress on stderr (default), another stream, or false. */
  progress?: boolean | NodeJS.WriteStream;
  fetch?: typeof fetch;
}

const COMMIT = /^[0-9a-f]{40}$/;
const REPO_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

function envFlag(name: string): boolean {
  const v = process.env[name]?.toLowerCase();
  return v === '1' || v === 'true' || v === 'yes' || v === 'on';
}

/** The hub cache root the Python `huggingface_hub` would use. */
export function hubCacheDir(): string {
  if (process.env['HF_HUB_CACHE']) return resolve(process.env['HF_HUB_CACHE']);
  if (process.env['HF_HOME']) return resolve(process.env['HF_HOME'], 'hub');
  const xdg = process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache');
  return join(xdg, 'huggingface', 'hub');
}

/** Parses `org/name[@revision]`. */
export function parseModelSpec(spec: string): { repo: string; revision: string } {
  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? 'main' : spec.slice(at + 1);
  if (!REPO_ID.test(repo) || repo.includes('--') || repo.includes('..')) {
    throw new HubError(
      `"${spec}" is neither a local directory nor a hub model id like "org/name" or "org/name@revision"`,
    );
  }
  if (revision === '' || revision.includes('..'))
    throw new HubError(`"${spec}" has an empty or invalid revision`);
  return { repo, revision };
}

export function repoCacheDir(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.replaceAll('/', '--')}`);
}

/** Chooses what a model needs: top-level JSON (config, tokenizer, indexes) and one weight layout. */
export function defaultModelFiles(siblings: string[]): string[] {
  const top = siblings.filter((f) => !f.includes('/'));
  const json = top.filter((f) => f.endsWith('.json'));
  const safetensors = top.filter((f) => /^model.*\.safetensors$/.test(f));
  const bins = top.filter((f) => /^pytorch_model.*\.bin$/.test(f));
  const weights = safetensors.length > 0 ? safetensors : bins;
  const keepIndex = (f: string) =>
    !f.endsWith('.index.json') ||
    (safetensors.length > 0 ? f.startsWith('model.safetensors') : f.startsWith('pytorch_model'));
  return [...json.filter(keepIndex), ...weights];
}

/**
 * A local snapshot directory for `spec`: an existing directory as is, or `org/name[@revision]` resolved through
 * the hub cache, downloading what is missing (unless offline).
 */
export async function resolveModel(spec: string, options: ResolveModelOptions = {}): Promise<string> {
  if (existsSync(spec) && statSync(spec).isDirectory()) return resolve(spec);
  const { repo, revision } = parseModelSpec(spec);
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const repoDir = repoCacheDir(cacheDir, repo);
  const offline = options.offline ?? envFlag('HF_HUB_OFFLINE');
  if (offline) {
    const cached = await cachedSnapshot(repoDir, revision);
    if (cached) return cached;
    throw new HubError(
      `HF_HUB_OFFLINE is set and ${repo}@${revision} is not in the cache (${repoDir}); ` +
        'download it once with network access, or pass a local directory',
    );
  }
  const client = new HubClient(options);
  let info: { sha: string; siblings: string[] };
  try {
    info = await client.revisionInfo(repo, revision);
  } catch (e) {
    // Like huggingface_hub: without a network, fall back to a cached snapshot.
    const cached = e instanceof HubError ? undefined : await cachedSnapshot(repoDir, revision);
    if (cached) {
      console.warn(
        `[hf-loader] hub unreachable (${(e as Error).message}); using the cached ${repo}@${revision}`,
      );
      return cached;
    }
    throw e instanceof HubError
      ? e
      : new HubError(`cannot reach ${client.endpoint} for ${repo}: ${(e as Error).message}`);
  }
  const snapshot = join(repoDir, 'snapshots', info.sha);
  const wanted = (options.files ?? defaultModelFiles)(info.siblings);
  for (const file of wanted) {
    if (!info.siblings.includes(file)) throw new HubError(`${repo}@${revision} has no file "${file}"`);
    if (file.split('/').some((part) => part === '..' || part === '' || part === '.')) {
      throw new HubError(`${repo}: refusing file name "${file}"`);
    }
    const pointer = join(snapshot, file);
    if (existsSync(pointer)) continue;
    await client.downloadToCache(repo, info.sha, file, repoDir, pointer);
  }
  if (revision !== info.sha) {
    await mkdir(join(repoDir, 'refs'), { recursive: true });
    await writeFile(join(repoDir, 'refs', revision), info.sha);
  }
  await mkdir(snapshot, { recursive: true });
  return snapshot;
}

async function cachedSnapshot(repoDir: string, revision: string): Promise<string | undefined> {
  let sha = revision;
  if (!COMMIT.test(revision)) {
    const ref = join(repoDir, 'refs', revision);
    if (!existsSync(ref)) return undefined;
    sha = (await readFile(ref, 'utf8')).trim();
  }
  const dir = join(repoDir, 'snapshots', sha);
  return existsSync(dir) ? dir : undefined;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `path` as an exclusive lock file holding our pid; waits while a live process holds it and takes over a
 * lock whose process is gone. Returns the release function.
 */
async function lockFile(path: string, what: string, timeoutMs = 30 * 60_000): Promise<() => Promise<void>> {
  const start = Date.now();
  for (;;) {
    try {
      await writeFile(path, `${process.pid}\n${hostname()}\n`, { flag: 'wx' });
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const [pid, host] = (await readFile(path, 'utf8').catch(() => '')).split('\n');
    if (host === hostname() && pid && !processAlive(Number(pid))) {
      await rm(path, { force: true }); // stale: its process died mid-download
      continue;
    }
    if (Date.now() - start > timeoutMs) {
      throw new HubError(`${what}: another download holds ${path}; remove it if no download is running`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Strips the weak marker and quotes from an ETag, as the blob file name. */
function normalizeEtag(etag: string | null): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

class HubClient {
  readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly fetch: typeof fetch;
  private readonly progress: ProgressSink;

  constructor(options: ResolveModelOptions) {
    this.endpoint = (options.endpoint ?? process.env['HF_ENDPOINT'] ?? 'https://huggingface.co').replace(
      /\/+$/,
      '',
    );
    this.token =
      options.token ?? process.env['HF_TOKEN'] ?? process.env['HUGGING_FACE_HUB_TOKEN'] ?? undefined;
    this.fetch = options.fetch ?? globalThis.fetch;
    const p = options.progress ?? true;
    this.progress = p === false ? silentProgress : progressBar(p === true ? process.stderr : p);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      'user-agent': 'mptjs-hf-loader',
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...extra,
    };
  }

  private async failure(res: Response, what: string): Promise<HubError> {
    const detail = res.headers.get('x-error-message') ?? (await res.text().catch(() => '')).slice(0, 200);
    if (res.status === 401 || res.status === 403) {
      const hint = this.token
        ? 'the token in HF_TOKEN has no access to it'
        : 'set HF_TOKEN to a token with access';
      return new HubError(
        `${what}: HTTP ${res.status} (authentication required: ${hint})${detail ? `: ${detail}` : ''}`,
      );
    }
    if (res.status === 404)
      return new HubError(`${what}: not found (HTTP 404)${detail ? `: ${detail}` : ''}`);
    return new HubError(`${what}: HTTP ${res.status}${detail ? `: ${detail}` : ''}`);
  }

  async revisionInfo(repo: string, revision: string): Promise<{ sha: string; siblings: string[] }> {
    const url = `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
    const res = await this.fetch(url, { headers: this.headers() });
    if (!res.ok) {
      const err = await this.failure(res, `model ${repo}@${revision} at ${this.endpoint}`);
      if (res.status === 404) {
        err.message = `model ${repo}@${revision} not found at ${this.endpoint}: no such repository or revision (HTTP 404)`;
      }
      throw err;
    }
    const body = (await res.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
    if (typeof body.sha !== 'string' || !COMMIT.test(body.sha) || !Array.isArray(body.siblings)) {
      throw new HubError(`${url}: unexpected answer (no commit sha or siblings)`);
    }
    return { sha: body.sha, siblings: body.siblings.map((s) => String(s.rfilename)) };
  }

  /** HEAD without following redirects: the hub puts the LFS etag and size on the redirect itself. */
  private async fileMeta(
    url: string,
    what: string,
  ): Promise<{ etag: string; size: number | undefined; location: string }> {
    const res = await this.fetch(url, {
      method: 'HEAD',
      headers: this.headers({ 'accept-encoding': 'identity' }),
      redirect: 'manual',
    });
    if (res.status >= 400) throw await this.failure(res, what);
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    if (!etag || etag.includes('/') || etag.includes('..'))
      throw new HubError(`${what}: the hub sent no usable ETag`);
    const sizeHeader =
      res.headers.get('x-linked-size') ?? (res.status < 300 ? res.headers.get('content-length') : null);
    const location =
      res.status >= 300 && res.headers.get('location')
        ? new URL(res.headers.get('location')!, url).href
        : url;
    return { etag, size: sizeHeader === null ? undefined : Number(sizeHeader), location };
  }

  async downloadToCache(
    repo: string,
    sha: string,
    file: string,
    repoDir: string,
    pointer: string,
  ): Promise<void> {
    const url = `${this.endpoint}/${repo}/resolve/${sha}/${file.split('/').map(encodeURIComponent).join('/')}`;
    const what = `${repo}/${file}`;
    const meta = await this.fileMeta(url, what);
    const blob = join(repoDir, 'blobs', meta.etag);
    await mkdir(dirname(blob), { recursive: true });
    if (!existsSync(blob)) {
      // One writer per blob: another process (or call) may be downloading it right now.
      const release = await lockFile(`${blob}.lock`, what);
      try {
        if (!existsSync(blob)) await this.downloadBlob(meta.location, blob, meta.size, file);
      } finally {
        await release();
      }
    }
    await mkdir(dirname(pointer), { recursive: true });
    // Link under a temporary name, then rename over the pointer: atomic even when two calls race here.
    const tmp = `${pointer}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await symlink(relative(dirname(pointer), blob), tmp);
    await rename(tmp, pointer);
  }

  private async downloadBlob(
    url: string,
    blob: string,
    size: number | undefined,
    file: string,
  ): Promise<void> {
    const incomplete = `${blob}.incomplete`;
    const have = existsSync(incomplete) ? (await stat(incomplete)).size : 0;
    const headers = this.headers({
      'accept-encoding': 'identity',
      ...(have > 0 ? { range: `bytes=${have}-` } : {}),
    });
    const res = await this.fetch(url, { headers });
    if (res.status === 416 && size !== undefined && have === size) {
      await rename(incomplete, blob); // already complete before an interruption
      return;
    }
    if (!res.ok || !res.body) throw await this.failure(res, `download of ${file}`);
    const resumed = res.status === 206;
    let done = resumed ? have : 0;
    this.progress.start(file, size, done);
    const out = createWriteStream(incomplete, { flags: resumed ? 'a' : 'w' });
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        done += chunk.byteLength;
        this.progress.update(done);
      }
    } catch (e) {
      throw new HubError(
        `download of ${file} interrupted at ${done}${size === undefined ? '' : ` of ${size}`} bytes (${(e as Error).message}); run again to resume`,
      );
    } finally {
      await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
    }
    this.progress.finish();
    if (size !== undefined && done !== size) {
      throw new HubError(`download of ${file} stopped at ${done} of ${size} bytes; run again to resume`);
    }
    await rename(incomplete, blob);
  }
}
