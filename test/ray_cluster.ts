/**
 * The Ray suites' test cluster: `test/fixtures/ray/cluster.py` (head, `a` with `pool_a`, `b1`
 * and `b2` with `pool_b`, all on loopback), started and torn down by a test file.
 * @module
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import process from "node:process";

/** A running test cluster: its address, its nodes by label, and its output so far. */
export class TestCluster {
  readonly proc: ChildProcessWithoutNullStreams;
  output = "";
  address = "";
  /** Ray node id by label (`head`, `a`, `b1`, `b2`). */
  nodes: Record<string, string> = {};

  private constructor(proc: ChildProcessWithoutNullStreams) {
    this.proc = proc;
    proc.stdout.on("data", (d: Buffer) => (this.output += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (this.output += d.toString()));
  }

  /** Starts the cluster with `rayPython` and waits until it says its address and nodes. */
  static async start(rayPython: string, repo: string): Promise<TestCluster> {
    const proc = spawn(rayPython, [join(repo, "test", "fixtures", "ray", "cluster.py")], { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, RAY_USAGE_STATS_ENABLED: "0" } });
    const cluster = new TestCluster(proc);
    const info = JSON.parse(await cluster.says(/\{"address".*\}/, 180_000)) as { address: string; nodes: Record<string, string> };
    cluster.address = info.address;
    cluster.nodes = info.nodes;
    return cluster;
  }

  /** Resolves with the first match of `what` in the cluster's output (rejects after `ms`, with the output). */
  says(what: RegExp, ms: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the test cluster did not say ${what} within ${ms} ms:\n${this.output}`)), ms);
      const check = () => {
        const m = what.exec(this.output);
        if (m) {
          clearTimeout(t);
          this.proc.stdout.off("data", check);
          resolve(m[0]);
        }
      };
      this.proc.stdout.on("data", check);
      check();
    });
  }

  /** Sends one command line (`remove LABEL`). */
  send(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  /** Ends the cluster (its stdin closed; killed after a minute). */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    this.proc.stdin.end();
    await new Promise<void>((r) => {
      const t = setTimeout(() => (this.proc.kill("SIGKILL"), r()), 60_000);
      this.proc.once("exit", () => (clearTimeout(t), r()));
    });
  }
}
