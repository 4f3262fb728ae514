import type { IncomingMessage } from 'node:http';
import { UsageError } from '../errors.js';

/**
 * Which browser origins may call the server. Requests without an `Origin` header (curl, SDKs, servers) are not
 * cross-site and pass; a browser's request passes when it comes from the server's own origin (the playground) or
 * from an origin given with `--cors-origin`. Same-origin needs the `Host` to name a loopback address or the bound
 * one when the server listens on loopback, so a DNS-rebound name pointing at 127.0.0.1 is still cross-site.
 */
export type OriginVerdict =
  | { kind: 'none' }
  | { kind: 'same' }
  | { kind: 'allowed'; origin: string }
  | { kind: 'refused'; origin: string };

const LOOPBACK_NAMES = new Set(['localhost', '[::1]', '::1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Checks a `--cors-origin` value: `*`, `null`, or `scheme://host[:port]` with nothing after it. */
export function parseCorsOrigin(value: string): string {
  const v = value.trim();
  if (v === '*' || v === 'null') return v;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new UsageError(`--cors-origin ${value}: expected an origin like https://example.com[:port], or *`);
  }
  if (url.origin === 'null' || url.origin !== v.replace(/\/$/, '').toLowerCase()) {
    throw new UsageError(
      `--cors-origin ${value}: expected an origin (scheme://host[:port], no path), e.g. ${url.origin}`,
    );
  }
  return url.origin;
}

export class OriginPolicy {
  private readonly allowed: Set<string>;
  private readonly any: boolean;

  constructor(
    allowed: readonly string[],
    /** The address the server listens on (decides whether same-origin must be a loopback name). */
    private bindHost: string | undefined = undefined,
  ) {
    this.allowed = new Set(allowed.map((o) => (o === '*' || o === 'null' ? o : new URL(o).origin)));
    this.any = this.allowed.has('*');
  }

  setBindHost(host: string): void {
    this.bindHost = host;
  }

  verdict(req: IncomingMessage): OriginVerdict {
    const origin = req.headers.origin;
    if (origin === undefined) return { kind: 'none' };
    if (this.isSameOrigin(origin, req.headers.host)) return { kind: 'same' };
    if (this.any || this.allowed.has(origin)) return { kind: 'allowed', origin };
    return { kind: 'refused', origin };
  }

  private isSameOrigin(origin: string, host: string | undefined): boolean {
    if (!host || origin !== `http://${host}`) return false;
    const bind = this.bindHost;
    if (!bind || !isLoopbackHost(bind.toLowerCase())) return true;
    let hostname: string;
    try {
      hostname = new URL(origin).hostname.toLowerCase();
    } catch {
      return false;
    }
    return isLoopbackHost(hostname) || hostname === bind.toLowerCase();
  }
}
