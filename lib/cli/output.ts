/**
 * A job's captured output as the CLI sees it: removing it when the job goes away, for `purge` and
 * `remove`. Where output lives is lib/output.ts's business. No store access here.
 */
import { UserError } from "../errors.ts";
import { removeOutput } from "../output.ts";

/**
 * Deletes the output of the runs with these keys. A file that was never written is fine; one that
 * cannot be deleted is a `UserError` naming it (after trying the others), so a caller never
 * reports output as gone when it is not.
 */
export async function removeJobOutput(dbPath: string, outputKeys: Iterable<string>): Promise<void> {
  const failed = await removeOutput(dbPath, outputKeys);
  if (failed.length > 0) throw new UserError(`cannot delete ${failed.join(", ")}`);
}
