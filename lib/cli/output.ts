/**
 * A job's captured output as the CLI sees it: removing it when the job goes away. The one place
 * that knows which files hold a job's output, for `purge` and `remove`. No store access here.
 */
import { UserError } from "../errors.ts";
import { logPath } from "../store/open.ts";
import type { Job } from "../store/store.ts";

/**
 * Deletes everything `job` printed: its log and the rotated copy. A file that was never written
 * is fine; one that cannot be deleted is a `UserError` naming it (after trying the others), so a
 * caller never reports output as gone when it is not.
 */
export async function removeJobOutput(dbPath: string, job: Pick<Job, "seq">): Promise<void> {
  const failed: string[] = [];
  for (const path of [logPath(dbPath, job.seq), logPath(dbPath, job.seq) + ".1"]) {
    try {
      await Deno.remove(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) failed.push(`${path} (${(e as Error).message})`);
    }
  }
  if (failed.length > 0) throw new UserError(`cannot delete ${failed.join(", ")}`);
}
