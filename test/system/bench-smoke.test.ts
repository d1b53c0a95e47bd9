// Keeps the benchmark harness (bench/index.ts) from rotting: a --quick run against mpconn and
// the raw Bun baseline must finish and produce numbers for every workload. No timing
// thresholds here: speed is what the benchmark itself reports.
import { expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Report } from "../../bench/render.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const root = join(import.meta.dir, "..", "..");
const SYSTEMS = ["mpconn-bytes", "raw-bun"];
const WORKLOADS = ["pingpong-64", "stream-64", "stream-4k", "stream-1m", "stream-256m", "rss-1m-64"];

const positive = (v: unknown): boolean => typeof v === "number" && Number.isFinite(v) && v > 0;

test("bench --quick measures mpconn and the raw baseline", async () => {
  const out = mkdtempSync(join(tmpdir(), "mpconn-bench-smoke-"));
  try {
    const proc = Bun.spawn([process.execPath, "bench/index.ts", "--quick", "--only", SYSTEMS.join(","), "--out", out], {
      cwd: root,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    if (code !== 0) console.error(stderr);
    expect(code).toBe(0);
    expect(stdout).toContain("Bar ratios");

    const report = JSON.parse(readFileSync(join(out, "latest.json"), "utf8")) as Report;
    expect(report.options.quick).toBe(true);
    expect(report.systems.map((s) => s.name).sort()).toEqual([...SYSTEMS].sort());
    for (const system of SYSTEMS) {
      for (const workload of WORKLOADS) {
        const r = report.results.find((x) => x.system === system && x.workload === workload);
        expect({ system, workload, ok: r?.ok, error: r?.error }).toEqual({ system, workload, ok: true, error: undefined });
        expect(r!.reps!.length).toBeGreaterThan(0);
        if (workload.startsWith("pingpong")) {
          expect(positive(r!.medianUs) && positive(r!.p99Us)).toBe(true);
        } else {
          expect(positive(r!.msgsPerSec) && positive(r!.mbPerSec)).toBe(true);
        }
        expect(positive(r!.parent?.peakKiB) && positive(r!.child?.peakKiB)).toBe(true);
      }
    }
    // The ratios that only need these two systems were computed.
    const ratio = report.ratios.find((r) => r.label.startsWith("64 B stream msgs/s: mpconn / raw"));
    expect(positive(ratio?.value)).toBe(true);
    expect(typeof report.ratios.find((r) => r.label.includes("RSS growth"))?.met).toBe("boolean");

    const svg = readFileSync(join(out, "latest.svg"), "utf8");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg).toContain("mpconn sendBytes/recvBytes");
    expect(existsSync(join(out, `${report.date.slice(0, 10)}-${report.machine.host.replace(/[^\w.-]/g, "_")}.json`))).toBe(true);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 30_000);
