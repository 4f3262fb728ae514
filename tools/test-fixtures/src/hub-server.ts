// A real HTTP server on 127.0.0.1 that serves directories in the hub's URL layout, for the hub client's tests:
// `/api/models/{repo}/revision/{rev}`, `/{repo}/resolve/{rev}/{file}` (small files directly with an ETag, large
// ones as a 302 to `/lfs/...` carrying X-Linked-Etag / X-Linked-Size, as the hub does), with Range support.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface ServedRepo {
  dir: string;
  /** The commit every revision resolves to. */
  sha: string;
  /** A private repo answers 401 unless the request carries `Bearer <token>`. */
  token?: string;
}

export interface RequestLog {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface HubServer {
  url: string;
  requests: RequestLog[];
  /** The next LFS download sends this many body bytes, then drops the connection. */
  cutNextDownloadAfter(bytes: number): void;
  close(): Promise<void>;
}

const LFS_MIN_BYTES = 100_000;

export async function startHubServer(repos: Record<string, ServedRepo>): Promise<HubServer> {
  const requests: RequestLog[] = [];
  let cutAfter: number | undefined;
  const lfs = new Map<string, Buffer>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({
      method: req.method ?? '',
      path,
      range: req.headers.range,
      authorization: req.headers.authorization,
    });
    const send = (status: number, headers: Record<string, string | number>, body?: Buffer | string) => {
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const lfsMatch = /^\/lfs\/([0-9a-f]{64})$/.exec(path);
    if (lfsMatch) {
      const data = lfs.get(lfsMatch[1]!);
      if (!data) return send(404, {}, 'no such object');
      return sendRange(req, res, data);
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoId = api?.[1] ?? resolve?.[1];
    const repo = repoId ? repos[repoId] : undefined;
    if (!repo)
      return send(404, { 'x-error-message': 'Repository not found' }, '{"error":"Repository not found"}');
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      return send(401, { 'x-error-message': 'Invalid credentials in Authorization header' }, 'unauthorized');
    }
    const files = readdirSync(repo.dir).sort();
    if (api) {
      const rev = api[2]!;
      if (rev !== 'main' && rev !== repo.sha)
        return send(404, { 'x-error-message': 'Revision not found' }, '{}');
      const body = JSON.stringify({
        id: repoId,
        sha: repo.sha,
        siblings: files.map((rfilename) => ({ rfilename })),
      });
      return send(200, { 'content-type': 'application/json' }, body);
    }
    if (!resolve) return send(404, {}, 'no such route');
    const file = resolve[3]!;
    if (!files.includes(file)) return send(404, { 'x-error-code': 'EntryNotFound' }, 'entry not found');
    const data = readFileSync(join(repo.dir, file));
    const common = { 'x-repo-commit': repo.sha };
    if (data.length >= LFS_MIN_BYTES) {
      const oid = createHash('sha256').update(data).digest('hex');
      lfs.set(oid, data);
      return send(302, {
        ...common,
        location: `/lfs/${oid}`,
        'x-linked-etag': `"${oid}"`,
        'x-linked-size': data.length,
      });
    }
    const etag = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
    return send(200, { ...common, etag: `"${etag}"`, 'content-length': data.length }, data);
  };

  const sendRange = (req: IncomingMessage, res: ServerResponse, data: Buffer) => {
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        return res.end();
      }
      res.writeHead(206, {
        'content-length': data.length - start,
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
      });
    } else {
      res.writeHead(200, { 'content-length': data.length });
    }
    if (req.method === 'HEAD') return res.end();
    if (cutAfter !== undefined) {
      const n = cutAfter;
      cutAfter = undefined;
      res.write(data.subarray(start, start + n), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(data.subarray(start));
  };

  const server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    cutNextDownloadAfter(bytes) {
      cutAfter = bytes;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
