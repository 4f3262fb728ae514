import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from './stop-string-matcher.js';

describe('StopStringMatcher', () => {
  it('holds back a tail that may begin a stop string', () => {
    const m = new StopStringMatcher(['\nUser:']);
    expect(m.safeLength('Hi there\nUs')).toBe('Hi there'.length);
    expect(m.safeLength('Hi there')).toBe(8);
    expect(m.find('Hi\nUser: x', 0)).toBe(2);
  });

  it('rejects empty stop strings', () => {
    expect(() => new StopStringMatcher([''])).toThrow('stop strings must not be empty');
  });
});
