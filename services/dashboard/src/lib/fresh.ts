import type { Change } from "../changes";

/**
 * Reads with `read` until what it returns is at least `version`, up to `tries` reads `pause`
 * ms apart, and returns the last read. A change can reach the browser before the service
 * replica that answers the next read has applied it (replicas catch up a few milliseconds
 * later, more on a loaded machine), so one read after a change may still show the old state.
 */
export async function readUntil<T extends { version: number }>(
  read: () => Promise<T>,
  version: number,
  tries = 10,
  pause = 200,
): Promise<T> {
  let value = await read();
  for (let i = 1; i < tries && value.version < version; i++) {
    await new Promise((resolve) => setTimeout(resolve, pause));
    value = await read();
  }
  return value;
}

/** The newest version announced per id among `changes` of `kind`. */
export function announcedVersions(changes: readonly Change[], kind: string): Map<string, number> {
  const newest = new Map<string, number>();
  for (const c of changes) {
    if (c.kind === kind) newest.set(c.id, Math.max(newest.get(c.id) ?? 0, c.version));
  }
  return newest;
}
