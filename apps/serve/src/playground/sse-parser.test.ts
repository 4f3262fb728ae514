import { describe, expect, it } from 'vitest';
import { SseParser } from './sse-parser.js';

describe('SseParser', () => {
  it('returns events split across chunks, and only complete ones', () => {
    const p = new SseParser();
    expect(p.push('data: {"a"')).toEqual([]);
    expect(p.push(':1}\n\ndata: [DO')).toEqual(['{"a":1}']);
    expect(p.push('NE]\n\n')).toEqual(['[DONE]']);
  });

  it('joins multi-line data, ignores comments and accepts CRLF', () => {
    const p = new SseParser();
    expect(p.push(': keep-alive\r\n\r\ndata: one\r\ndata: two\r\n\r\n')).toEqual(['one\ntwo']);
  });
});
