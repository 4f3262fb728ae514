import type { IncomingMessage } from 'node:http';
import { ApiError, badRequest } from '../errors.js';

// Fatal: invalid UTF-8 is rejected rather than silently replaced with U+FFFD.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** The client went away before its request or the response was complete (counted apart from errors). */
export class ClientGoneError extends Error {
  override name = 'ClientGoneError';
}

/**
 * 415 unless the body is declared as JSON: `application/json`, optionally with `charset=utf-8`. Browsers can send
 * `text/plain` across sites without asking first; JSON only, so such a request cannot be made to look valid.
 */
export function checkJsonContentType(req: IncomingMessage): void {
  const header = req.headers['content-type'];
  const [media, ...params] = (header ?? '').split(';');
  const charset = params
    .map((p) => p.trim().split('='))
    .find(([k]) => k?.trim().toLowerCase() === 'charset')?.[1];
  const charsetOk = charset === undefined || /^"?utf-8"?$/i.test(charset.trim());
  if (media?.trim().toLowerCase() !== 'application/json' || !charsetOk) {
    throw new ApiError(
      415,
      `request bodies must be JSON: send 'Content-Type: application/json' (got ${header === undefined ? 'none' : `'${header.slice(0, 100)}'`})`,
      'invalid_request_error',
      null,
      'unsupported_media_type',
    );
  }
}

/** Reads the raw body: 413 beyond `limit` bytes, 408 when it has not all arrived within `timeoutMs`. */
function readBytes(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | undefined) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      // Whatever else the client sends is discarded; the connection closes after the error response.
      if (err) req.resume();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onClose = () =>
      finish(new ClientGoneError('the client closed the connection during the request body'));
    const timer = setTimeout(
      () =>
        finish(
          new ApiError(
            408,
            `the request body did not arrive within ${timeoutMs / 1000} s`,
            'invalid_request_error',
            null,
            'request_timeout',
          ),
        ),
      timeoutMs,
    );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}

/** Reads a JSON request body of at most `limit` bytes (413 beyond it, 400 when it is not UTF-8 or not a JSON object). */
export async function readJsonBody(
  req: IncomingMessage,
  limit: number,
  timeoutMs = 30_000,
): Promise<Record<string, unknown>> {
  const body = await readBytes(req, limit, timeoutMs);
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw badRequest('the request body is not valid UTF-8', null, 'invalid_encoding');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest(`invalid JSON in the request body: ${(err as Error).message}`, null, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('the request body must be a JSON object', null, 'invalid_json');
  }
  return value as Record<string, unknown>;
}

function tooLarge(limit: number): ApiError {
  return new ApiError(
    413,
    `the request body is larger than ${limit} bytes`,
    'invalid_request_error',
    null,
    'body_too_large',
  );
}
