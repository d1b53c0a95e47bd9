// Compiles assembly/codec.ts to build/codec.wasm. Runs on `npm install`, `bun install`
// and before `npm test`; skips the work when the wasm is newer than its sources.
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build", "codec.wasm");
const sources = readdirSync(join(root, "assembly")).filter((f) => f.endsWith(".ts")).map((f) => join(root, "assembly", f));
const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs), statSync(join(root, "asconfig.json")).mtimeMs);

if (existsSync(out) && statSync(out).mtimeMs >= newest && !process.argv.includes("--force")) process.exit(0);

mkdirSync(dirname(out), { recursive: true });
const asc = (await import("assemblyscript/asc")).default;
const { error, stderr } = await asc.main(
  ["assembly/codec.ts", "--config", "asconfig.json", "--target", "release", "--outFile", "build/codec.wasm", "--textFile", "build/codec.wat"],
  { stdout: process.stdout, stderr: process.stderr, baseDir: root },
);
if (error) {
  console.error(`build-wasm: ${error.message}\n${stderr.toString()}`);
  process.exit(1);
}
