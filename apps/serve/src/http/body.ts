import type { IncomingMessage } from 'node:http';
import { ApiError, badRequest } from '../errors.js';

// Fatal: invalid UTF-8 is rejected rather than silently replaced with U+FFFD.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Reads a JSON request body of at most `limit` bytes (413 beyond it, 400 when it is not UTF-8 or not a JSON object). */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  let text: string;
  try {
    text = UTF8.decode(Buffer.concat(chunks));
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
