import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError } from '../errors.js';
import { ClientGoneError, checkJsonContentType, readJsonBody } from './body.js';
import { handleChatCompletions } from './chat.js';
import { handleCompletions } from './completions.js';
import type { ServeContext } from './context.js';
import { OriginPolicy, type OriginVerdict } from './origin.js';
import { sendJson } from './respond.js';
import { PLAYGROUND_FILES, servePlaygroundFile } from './static.js';

export interface HttpOptions {
  /** Required as `Authorization: Bearer <key>` on /v1/* when set. */
  apiKey?: string | undefined;
  /** Largest request body accepted (bytes). */
  maxBodyBytes: number;
  /** Directory holding the built playground (index.html, playground.js, playground.css). */
  playgroundDir?: string | undefined;
  /** Browser origins allowed besides the server's own (`*`: any); others get 403. */
  corsOrigins?: readonly string[] | undefined;
  /** Time a client has to send the request headers (`--headers-timeout`). */
  headersTimeoutMs?: number | undefined;
  /** Time a client has to send the request body, once its headers arrived (`--body-timeout`). */
  bodyTimeoutMs?: number | undefined;
  /** Time an idle keep-alive connection stays open (`--keep-alive-timeout`). */
  keepAliveTimeoutMs?: number | undefined;
  /** Most open connections; further ones are closed at once (`--max-connections`). */
  maxConnections?: number | undefined;
}

export const DEFAULT_TIMEOUTS = {
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 256,
};

/** Methods a preflight may ask for. */
const CORS_METHODS = 'GET, POST';

type Handler = (ctx: ServeContext, req: IncomingMessage, res: ServerResponse) => Promise<number>;

interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
}

/** The OpenAI-compatible HTTP server over a loaded model and its scheduler. */
export class ServeHttpServer {
  readonly server: Server;
  private shuttingDown = false;
  private readonly routes: Map<string, Route>;
  private readonly origins: OriginPolicy;
  private readonly failed: Promise<Error>;
  private reportFailure: (error: Error) => void = () => {};
  /** Requests whose handler is still running, and who waits for them to reach zero. */
  private inFlight = 0;
  private onIdle: (() => void) | undefined;

  constructor(
    readonly ctx: ServeContext,
    readonly options: HttpOptions,
  ) {
    const bodyTimeoutMs = options.bodyTimeoutMs ?? DEFAULT_TIMEOUTS.bodyTimeoutMs;
    const json = (handle: typeof handleCompletions): Handler => {
      return async (c, req, res) =>
        handle(c, await readJsonBody(req, options.maxBodyBytes, bodyTimeoutMs), req, res);
    };
    this.origins = new OriginPolicy(options.corsOrigins ?? []);
    this.failed = new Promise((resolve) => {
      this.reportFailure = resolve;
    });
    this.routes = new Map<string, Route>([
      ['/v1/completions', { method: 'POST', handler: json(handleCompletions) }],
      ['/v1/chat/completions', { method: 'POST', handler: json(handleChatCompletions) }],
      ['/v1/models', { method: 'GET', handler: async (c, _req, res) => this.models(c, res) }],
      ['/health', { method: 'GET', handler: async (_c, _req, res) => this.health(res) }],
      ['/metrics', { method: 'GET', handler: async (c, _req, res) => this.metrics(c, res) }],
    ]);
    const headersTimeout = options.headersTimeoutMs ?? DEFAULT_TIMEOUTS.headersTimeoutMs;
    this.server = createServer(
      {
        headersTimeout,
        // Node's own limit on a whole request is a backstop: the body timeout is enforced while reading it.
        requestTimeout: headersTimeout + 2 * bodyTimeoutMs,
        keepAliveTimeout: options.keepAliveTimeoutMs ?? DEFAULT_TIMEOUTS.keepAliveTimeoutMs,
        // How often Node looks for connections over those limits (its default, 30 s, would let them run over).
        connectionsCheckingInterval: Math.min(1000, headersTimeout),
      },
      (req, res) => {
        this.handle(req, res).catch((err) => {
          // Last resort: the handler itself failed after the response started.
          if (!res.headersSent) sendJson(res, 500, new ApiError(500, String(err), 'server_error').toJSON());
          else res.destroy();
        });
      },
    );
    this.server.maxConnections = options.maxConnections ?? DEFAULT_TIMEOUTS.maxConnections;
  }

  /**
   * Resolves with the error once the model engine is found broken (the scheduler's probe failed): from then on
   * `/health` answers 503 and generation requests get 503 `engine_failed`. The `serve` command exits non-zero on
   * it, so a supervisor restarts the process with a fresh engine.
   */
  engineFailed(): Promise<Error> {
    return this.failed;
  }

  /** Called by the scheduler's hook when its probe finds the engine broken. */
  markEngineFailed(error: Error): void {
    console.error(`[mptjs-serve] the model engine failed: ${error.message}`);
    this.reportFailure(error);
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    this.origins.setBindHost(host);
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful shutdown: new requests get 503 while queued and running ones finish (up to `graceMs`, then they
   * are ended); then the listener and every connection close.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.shuttingDown = true;
    const timer = setTimeout(() => this.ctx.scheduler.abortAll(), graceMs);
    try {
      await this.ctx.scheduler.drain();
      // Handlers still writing their answers (errors, last chunks) finish before the sockets close.
      if (this.inFlight > 0) {
        await new Promise<void>((r) => {
          this.onIdle = r;
          setTimeout(r, graceMs).unref();
        });
      }
    } finally {
      clearTimeout(timer);
    }
    // Let the last responses flush before closing the sockets.
    await new Promise((r) => setImmediate(r));
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    try {
      await this.handleCounted(req, res);
    } finally {
      if (--this.inFlight === 0) this.onIdle?.();
    }
  }

  private async handleCounted(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = this.routes.get(path);
    const endpoint = route ? path : PLAYGROUND_FILES[path] ? 'playground' : 'other';
    // A client that leaves before its response is complete is counted apart (499, as nginx does), not as an error.
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) clientGone = true;
    });
    let status: number;
    try {
      status = await this.dispatch(path, route, req, res);
    } catch (err) {
      const e =
        err instanceof ApiError
          ? err
          : err instanceof ClientGoneError
            ? undefined
            : new ApiError(500, err instanceof Error ? err.message : String(err), 'server_error');
      status = e?.status ?? 499;
      if (!e) clientGone = true;
      // An unread (too large, too slow) body would otherwise keep the connection busy.
      if ((status === 413 || status === 408) && !res.headersSent) res.setHeader('connection', 'close');
      if (!e) res.destroy();
      else if (!res.headersSent) sendJson(res, e.status, e.toJSON());
      else res.end();
      if (e?.status === 500 && !clientGone)
        console.error(`[mptjs-serve] ${req.method} ${path}: ${e.message}`);
    }
    if (clientGone) {
      status = 499;
      this.ctx.metrics.clientDisconnects.inc({ endpoint });
    }
    this.ctx.metrics.requests.inc({ endpoint, status: String(status) });
  }

  private async dispatch(
    path: string,
    route: Route | undefined,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<number> {
    if (this.shuttingDown) {
      res.setHeader('connection', 'close');
      throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'shutting_down');
    }
    const origin = this.origins.verdict(req);
    this.checkOrigin(origin, res);
    if (req.method === 'OPTIONS') return this.preflight(path, route, origin, req, res);
    if (!route) {
      const file = PLAYGROUND_FILES[path];
      if (file && req.method === 'GET' && this.options.playgroundDir) {
        if (await servePlaygroundFile(res, this.options.playgroundDir, file)) return 200;
      }
      throw new ApiError(
        404,
        `no route for ${req.method} ${path}`,
        'invalid_request_error',
        null,
        'unknown_url',
      );
    }
    if (req.method !== route.method) {
      res.setHeader('allow', route.method);
      throw new ApiError(
        405,
        `${path} accepts ${route.method}, not ${req.method}`,
        'invalid_request_error',
        null,
        'method_not_allowed',
      );
    }
    if (path.startsWith('/v1/')) this.authorize(req);
    if (route.method === 'POST') {
      const failure = this.ctx.scheduler.engineFailure;
      if (failure) {
        throw new ApiError(
          503,
          `the model engine failed: ${failure.message}`,
          'server_error',
          null,
          'engine_failed',
        );
      }
      checkJsonContentType(req);
    }
    return route.handler(this.ctx, req, res);
  }

  /** 403 for a browser request from an origin not allowed; CORS headers for an allowed cross-site one. */
  private checkOrigin(origin: OriginVerdict, res: ServerResponse): void {
    res.setHeader('vary', 'Origin');
    if (origin.kind === 'refused') {
      throw new ApiError(
        403,
        `cross-site requests from ${origin.origin.slice(0, 200)} are refused; start the server with --cors-origin ${origin.origin.slice(0, 200)} to allow them`,
        'invalid_request_error',
        null,
        'origin_not_allowed',
      );
    }
    if (origin.kind === 'allowed') res.setHeader('access-control-allow-origin', origin.origin);
  }

  /** CORS preflight (and plain OPTIONS): 204 with what the route accepts. */
  private preflight(
    path: string,
    route: Route | undefined,
    origin: OriginVerdict,
    req: IncomingMessage,
    res: ServerResponse,
  ): number {
    if (!route && !PLAYGROUND_FILES[path]) {
      throw new ApiError(404, `no route for OPTIONS ${path}`, 'invalid_request_error', null, 'unknown_url');
    }
    const methods = route ? `${route.method}, OPTIONS` : 'GET, OPTIONS';
    const headers: Record<string, string> = { allow: methods };
    if (origin.kind === 'allowed' || origin.kind === 'same') {
      headers['access-control-allow-methods'] = CORS_METHODS;
      const asked = req.headers['access-control-request-headers'];
      headers['access-control-allow-headers'] =
        typeof asked === 'string' && asked.length <= 1000 ? asked : 'authorization, content-type';
      headers['access-control-max-age'] = '600';
    }
    res.writeHead(204, headers);
    res.end();
    return 204;
  }

  private authorize(req: IncomingMessage): void {
    const key = this.options.apiKey;
    if (!key) return;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = Buffer.from(match?.[1]?.trim() ?? '');
    const expected = Buffer.from(key);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ApiError(
        401,
        match ? 'Incorrect API key provided' : 'Missing API key: send Authorization: Bearer <key>',
        'invalid_request_error',
        null,
        'invalid_api_key',
      );
    }
  }

  private models(ctx: ServeContext, res: ServerResponse): number {
    sendJson(res, 200, {
      object: 'list',
      data: [{ id: ctx.modelId, object: 'model', created: ctx.createdAt, owned_by: 'mptjs' }],
    });
    return 200;
  }

  /** 200 while the engine works; 503 with the error once it is found broken (the process is about to exit). */
  private health(res: ServerResponse): number {
    const { waiting, running } = this.ctx.scheduler.stats;
    const failure = this.ctx.scheduler.engineFailure;
    if (failure) {
      sendJson(res, 503, {
        status: 'failing',
        model: this.ctx.modelId,
        error: `the model engine failed: ${failure.message}`,
        waiting,
        running,
      });
      return 503;
    }
    sendJson(res, 200, { status: 'ok', model: this.ctx.modelId, waiting, running });
    return 200;
  }

  private async metrics(ctx: ServeContext, res: ServerResponse): Promise<number> {
    const { contentType, body } = await ctx.metrics.render();
    res.writeHead(200, { 'content-type': contentType });
    res.end(body);
    return 200;
  }
}
