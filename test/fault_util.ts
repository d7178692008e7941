/**
 * Helpers of the fault and load suites: this process's descendants (from /proc) and waiting
 * for a condition with a deadline.
 */
import { readdirSync, readFileSync } from "node:fs";

/** Pids of every live descendant of `pid` (zombies excluded). */
export function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (rest[0] === "Z") continue;
      parentOf.set(Number(entry), Number(rest[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const want = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, parent] of parentOf) {
      if (want.has(parent) && !want.has(p)) {
        want.add(p);
        out.push(p);
        grew = true;
      }
    }
  }
  return out;
}

/** Waits until `ok()` holds, checking every 50 ms; fails with `why()` after `ms`. */
export async function waitFor(ok: () => boolean, ms: number, why: () => string = () => "the condition never held"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(why());
    await new Promise((r) => setTimeout(r, 50));
  }
}
