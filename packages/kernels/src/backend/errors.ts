export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}
