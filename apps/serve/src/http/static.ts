import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The playground's files: a fixed list, so no request path ever reaches the file system. */
export const PLAYGROUND_FILES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/playground.js': 'playground.js',
  '/playground.css': 'playground.css',
};

export async function servePlaygroundFile(res: ServerResponse, dir: string, file: string): Promise<boolean> {
  let body: Buffer;
  try {
    body = await readFile(join(dir, file));
  } catch {
    return false;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    'cache-control': 'no-cache',
    'content-security-policy': "default-src 'self'; connect-src 'self'",
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
  return true;
}
