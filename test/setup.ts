// Preloaded by bunfig.toml before every test file.
import { setDefaultTimeout } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";

// Cross-process suites start interpreters and workers on a possibly busy 2-core machine:
// give each test room; none asserts on time. (Bun 1.4.5 applies a preload's default only to
// the first test file, so `npm test` also passes --timeout, and slow tests set their own.)
setDefaultTimeout(60_000);

// `bun test` straight after a clone (without an install that ran the build) still works.
const root = join(import.meta.dir, "..");
if (!existsSync(join(root, "build", "codec.wasm"))) {
  const build = Bun.spawnSync([process.execPath, join(root, "scripts", "build-wasm.mjs")], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) throw new Error("could not build build/codec.wasm");
}
