import { ApiError, badRequest } from '../errors.js';

/**
 * What one request may cost, checked before any tokenizing or forward pass: each limit has a `serve` flag, and a
 * request over one gets a 400 (a parameter out of range) or 413 (too much input) that names it.
 */
export interface RequestLimits {
  /** Prompts in one completions request (`--max-prompts`). */
  maxPrompts: number;
  /** UTF-8 bytes of prompt text in one request, before tokenizing (`--max-prompt-bytes`). */
  maxPromptBytes: number;
  /** Prompt tokens in one request, all prompts together (`--max-prompt-tokens`). */
  maxPromptTokens: number;
  /** Largest `max_tokens` / `max_completion_tokens` (`--max-tokens`); undefined: the model's context length. */
  maxTokens: number | undefined;
  /** Largest `n` (`--max-n`). */
  maxN: number;
}

export const DEFAULT_LIMITS: RequestLimits = {
  maxPrompts: 16,
  maxPromptBytes: 256 * 1024,
  maxPromptTokens: 16 * 1024,
  maxTokens: undefined,
  maxN: 16,
};

function tooLarge(message: string, param: string, code: string): ApiError {
  return new ApiError(413, message, 'invalid_request_error', param, code);
}

export function checkPromptCount(limits: RequestLimits, count: number): void {
  if (count > limits.maxPrompts) {
    throw tooLarge(
      `'prompt' holds ${count} prompts; this server takes at most ${limits.maxPrompts} per request (--max-prompts)`,
      'prompt',
      'too_many_prompts',
    );
  }
}

export function checkN(limits: RequestLimits, n: number): void {
  if (n > limits.maxN) {
    throw badRequest(`'n' is ${n}; this server allows at most ${limits.maxN} (--max-n)`, 'n');
  }
}

/** `max_tokens` against the server's limit (the context length when none is set). */
export function checkMaxTokens(limits: RequestLimits, maxSeqLen: number, value: number, param: string): void {
  const max = limits.maxTokens ?? maxSeqLen;
  if (value > max) {
    const why = limits.maxTokens === undefined ? "the model's context length" : '--max-tokens';
    throw badRequest(`'${param}' is ${value}; this server allows at most ${max} (${why})`, param);
  }
}

/** Total UTF-8 bytes of the texts (at most the body size: cheap to count). */
export function checkPromptBytes(limits: RequestLimits, texts: readonly string[], param: string): void {
  let bytes = 0;
  for (const text of texts) {
    bytes += Buffer.byteLength(text);
    if (bytes > limits.maxPromptBytes) {
      throw tooLarge(
        `the prompt text is over ${limits.maxPromptBytes} bytes; this server takes at most ${limits.maxPromptBytes} per request (--max-prompt-bytes)`,
        param,
        'prompt_too_large',
      );
    }
  }
}

export function checkPromptTokens(limits: RequestLimits, total: number, param: string): void {
  if (total > limits.maxPromptTokens) {
    throw tooLarge(
      `the prompts hold ${total} tokens; this server takes at most ${limits.maxPromptTokens} per request (--max-prompt-tokens)`,
      param,
      'prompt_too_large',
    );
  }
}
