/** Exit codes a worker process uses to tell its supervisor why it ended. */

/** The database file was deleted or replaced under the worker: restarting it would not help. */
export const EXIT_STORE_REPLACED = 3;
