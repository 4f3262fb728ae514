/**
 * The error part of a WGSL compiler message. Tint lists every diagnostic of a module, warnings first where they
 * come first in the source (deprecated builtins, for one), so a message cut to a readable length can end before
 * the error that failed it. This keeps the text before the first diagnostic, each error and the notes that follow
 * it, and drops the rest; a message without an error diagnostic is returned whole.
 */
const DIAGNOSTIC = /(?:^|\s)(?:\S*:\d+:\d+ )?(error|warning|note|info): /g;

export function compilerErrors(message: string, maxChars = 4000): string {
  const starts: { at: number; severity: string }[] = [];
  for (const match of message.matchAll(DIAGNOSTIC)) starts.push({ at: match.index, severity: match[1]! });
  if (!starts.some((s) => s.severity === 'error')) return oneLine(message, maxChars);
  const kept = [message.slice(0, starts[0]!.at)];
  let keeping = false;
  starts.forEach((s, i) => {
    keeping = s.severity === 'error' || (keeping && s.severity === 'note');
    if (keeping) kept.push(message.slice(s.at, starts[i + 1]?.at ?? message.length));
  });
  return oneLine(kept.join(' '), maxChars);
}

function oneLine(text: string, maxChars: number): string {
  // Caret lines under the source excerpt carry nothing once the text is on one line.
  return text
    .replace(/\^{2,}/g, '^')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, maxChars);
}
