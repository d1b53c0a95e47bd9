// The codec's WebAssembly travels embedded in src/frames/codec-wasm.ts; it must be what
// assembly/codec.ts compiles to, or the tests would run a codec nobody can rebuild.
import { expect, test, setDefaultTimeout } from "bun:test";
import { join } from "node:path";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

test("src/frames/codec-wasm.ts is what assembly/ compiles to", () => {
  const root = join(import.meta.dir, "..", "..");
  const run = Bun.spawnSync(["node", join(root, "scripts", "build-wasm.mjs"), "--check"], { cwd: root, stderr: "pipe" });
  expect(run.stderr.toString()).toBe("");
  expect(run.exitCode).toBe(0);
});
