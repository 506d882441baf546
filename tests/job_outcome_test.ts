/** The one mapping from how a run ended to the state machine's event. */
import assert from "node:assert/strict";
import { type AttemptOutcome, eventForOutcome } from "../lib/job.ts";

Deno.test("job: each attempt outcome maps to its event", () => {
  const cases: Array<[AttemptOutcome, string]> = [
    ["completed", '{"type":"succeed"}'],
    ["interrupted", '{"type":"interrupt"}'],
    ["exited", '{"type":"fail","outcome":"exited"}'],
    ["spawn_error", '{"type":"fail","outcome":"spawn_error"}'],
    ["timeout", '{"type":"fail","outcome":"timeout"}'],
    ["signalled", '{"type":"fail","outcome":"signalled"}'],
    ["worker_lost", '{"type":"fail","outcome":"worker_lost"}'],
  ];
  for (const [outcome, event] of cases) {
    assert.equal(JSON.stringify(eventForOutcome(outcome)), event, outcome);
  }
});
