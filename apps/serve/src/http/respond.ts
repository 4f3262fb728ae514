import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../errors.js';
import type { ServeContext } from './context.js';

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** 404 when a request names a model this server does not serve (leaving `model` out means this one). */
export function checkModel(ctx: ServeContext, model: string | undefined): void {
  if (model !== undefined && model !== ctx.modelId) {
    throw new ApiError(
      404,
      `The model '${model}' does not exist; this server serves '${ctx.modelId}'`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
}

/** An AbortSignal that fires when the client goes away before the response is complete. */
export function requestAbortSignal(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort();
  };
  res.on('close', onClose);
  req.on('aborted', onClose);
  return controller.signal;
}
