// Character classes spelled the way the Rust side (Oniguruma / the regex crate) defines them, so JS regexes agree.

/**
 * Oniguruma's Unicode `\s` (White_Space minus nothing, plus NEL): unlike JS `\s` it includes U+0085 and excludes
 * U+FEFF.
 */
export const ONIG_SPACE = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** The regex crate's Unicode `\w`. */
export const RUST_WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';

/** The regex crate's Unicode `\s` (White_Space property). */
export const RUST_SPACE = '\\p{White_Space}';

/**
 * Translates an Oniguruma pattern from tokenizer.json into a JS `u`-mode source. Handles the shorthand classes whose
 * meaning differs (`\s`, `\S`); anything JS rejects surfaces as an error naming the pattern.
 */
export function onigToJs(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\' && i + 1 < pattern.length) {
      const n = pattern[i + 1];
      if (n === 's') out += inClass ? ONIG_SPACE : `[${ONIG_SPACE}]`;
      else if (n === 'S') {
        if (inClass) throw new Error('\\S inside a character class is not supported');
        out += `[^${ONIG_SPACE}]`;
      } else out += c + n;
      i++;
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += c;
  }
  return out;
}
