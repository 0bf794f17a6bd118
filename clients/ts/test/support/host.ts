// A real host on loopback for the end-to-end test: the project's `python -m host.cli serve` in
// simulation mode (as tests/support/deployment.py starts it), and the Python party's CLI.
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import { openSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { REPO } from "../helpers.js";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export interface Run { status: number; stdout: string; stderr: string }

export function runPython(python: string, args: string[], env: NodeJS.ProcessEnv): Run {
  const r = spawnSync(python, ["-c", "import sys; from cleanroom.cli import main; sys.exit(main(sys.argv[1:]))", ...args], { cwd: REPO, env, encoding: "utf8", timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export class PythonHost {
  process: ChildProcess | null = null;
  url = "";

  constructor(readonly python: string, readonly policy: string, readonly state: string, readonly log: string) {}

  async start(timeoutMs = 60_000): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    const out = openSync(this.log, "w");
    this.process = spawn(this.python, ["-m", "host.cli", "serve", "--policy", this.policy, "--state-dir", this.state, "--bind", `127.0.0.1:${port}`],
      { cwd: REPO, stdio: ["ignore", out, out], env: process.env });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.process.exitCode !== null) throw new Error(`the host exited:\n${readFileSync(this.log, "utf8").slice(-2000)}`);
      try {
        if ((await fetch(`${this.url}/v1/health`, { signal: AbortSignal.timeout(2000) })).ok) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the host was not healthy after ${timeoutMs} ms (see ${this.log})`);
  }

  /** SIGTERM (the host stops its enclave), SIGKILL if it hangs, then any enclave it left behind. */
  async stop(): Promise<void> {
    const p = this.process;
    this.process = null;
    if (p && p.exitCode === null) {
      const exited = new Promise((r) => p.once("exit", r));
      p.kill("SIGTERM");
      const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    for (const pid of this.enclavePids()) {
      try { process.kill(pid, "SIGKILL"); } catch { /* gone meanwhile */ }
    }
  }

  /** The enclave runs in its own session: found by the state directory in its environment. */
  enclavePids(): number[] {
    const marker = `CLEANROOM_STATE_DIR=${join(this.state, "enclave")}`;
    const pids: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        if (readFileSync(`/proc/${name}/environ`, "latin1").split("\0").includes(marker)) pids.push(Number(name));
      } catch { /* not ours to read, or gone */ }
    }
    return pids;
  }
}
