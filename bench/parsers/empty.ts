// The floor: `deno run` of a script that does nothing.
