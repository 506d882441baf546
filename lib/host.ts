/**
 * The name this host goes by in the store (`worker list`, `worker stop --host`): `QUEUECTL_HOST`
 * when set (containers often share a host name), else the system's host name.
 */
export function hostName(): string {
  const given = Deno.env.get("QUEUECTL_HOST")?.trim();
  return given ? given : Deno.hostname();
}
