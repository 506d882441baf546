/** Worker ids: `host:pid:nonce`, unique even when the system reuses a pid. */

/** The supervisor and the worker compute the same id from the same three parts. */
export function workerIdOf(host: string, pid: number, nonce: string): string {
  return `${host}:${pid}:${nonce}`;
}
