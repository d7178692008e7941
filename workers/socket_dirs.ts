/**
 * The private directories that hold each Python process's socket, and the sweep that removes
 * those of hosts that died without cleaning up.
 * @module
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { pidAlive } from "../src/util/os.ts";

/** Socket directories are `<tmpdir>/pyisolate-sock-<host pid>-<random>`. */
export const SOCKET_DIR_PREFIX = "pyisolate-sock-";

/**
 * Removes the socket directories of hosts that died without cleaning up (killed with
 * SIGKILL): those whose host pid no longer runs.
 */
export function sweepSocketDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(SOCKET_DIR_PREFIX)) continue;
    const pid = Number(name.slice(SOCKET_DIR_PREFIX.length).split("-")[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue;
    if (pidAlive(pid)) continue; // its host still runs
    try {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    } catch {
      // another host swept it first
    }
  }
}
