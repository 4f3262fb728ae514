import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError } from '../errors.js';
import { readJsonBody } from './body.js';
import { handleChatCompletions } from './chat.js';
import { handleCompletions } from './completions.js';
import type { ServeContext } from './context.js';
import { sendJson } from './respond.js';
import { PLAYGROUND_FILES, servePlaygroundFile } from './static.js';

export interface HttpOptions {
  /** Required as `Authorization: Bearer <key>` on /v1/* when set. */
  apiKey?: string | undefined;
  /** Largest request body accepted (bytes). */
  maxBodyBytes: number;
  /** Directory holding the built playground (index.html, playground.js, playground.css). */
  playgroundDir?: string | undefined;
}

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

  constructor(
    readonly ctx: ServeContext,
    readonly options: HttpOptions,
  ) {
    const json = (handle: typeof handleCompletions): Handler => {
      return async (c, req, res) => handle(c, await readJsonBody(req, options.maxBodyBytes), req, res);
    };
    this.routes = new Map<string, Route>([
      ['/v1/completions', { method: 'POST', handler: json(handleCompletions) }],
      ['/v1/chat/completions', { method: 'POST', handler: json(handleChatCompletions) }],
      ['/v1/models', { method: 'GET', handler: async (c, _req, res) => this.models(c, res) }],
      ['/health', { method: 'GET', handler: async (_c, _req, res) => this.health(res) }],
      ['/metrics', { method: 'GET', handler: async (c, _req, res) => this.metrics(c, res) }],
    ]);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        // Last resort: the handler itself failed after the response started.
        if (!res.headersSent) sendJson(res, 500, new ApiError(500, String(err), 'server_error').toJSON());
        else res.destroy();
      });
    });
  }

  listen(port: number, host: string): Promise<AddressInfo> {
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
    const path = (req.url ?? '/').split('?')[0]!;
    const route = this.routes.get(path);
    const endpoint = route ? path : PLAYGROUND_FILES[path] ? 'playground' : 'other';
    let status: number;
    try {
      status = await this.dispatch(path, route, req, res);
    } catch (err) {
      const e =
        err instanceof ApiError
          ? err
          : new ApiError(500, err instanceof Error ? err.message : String(err), 'server_error');
      status = e.status;
      // An unread (too large) body would otherwise keep the connection busy.
      if (e.status === 413 && !res.headersSent) res.setHeader('connection', 'close');
      if (!res.headersSent) sendJson(res, e.status, e.toJSON());
      else res.end();
      if (e.status === 500) console.error(`[mptjs-serve] ${req.method} ${path}: ${e.message}`);
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
    return route.handler(this.ctx, req, res);
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

  private health(res: ServerResponse): number {
    const { waiting, running } = this.ctx.scheduler.stats;
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
