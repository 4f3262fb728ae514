/** A config that cannot be used as written; the message names the full key path. */
export class TrainConfigError extends Error {
  override name = 'TrainConfigError';
}
