/** Index of the earliest of `stops` in `text`, or -1 (empty stop strings never match). */
export function firstStop(text: string, stops: readonly string[]): number {
  let first = -1;
  for (const s of stops) {
    const at = s.length > 0 ? text.indexOf(s) : -1;
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  return first;
}
