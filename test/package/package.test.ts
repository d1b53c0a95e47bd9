// The package as users get it: `npm pack`, then installed into fresh projects with npm and with
// `bun add`, run, compiled with `bun build --compile` and run from elsewhere, and type-checked
// under the tsconfigs users have (`tsc --init`, `bun init`, NodeNext, every strict flag) with
// TypeScript 5 (this repository's) and TypeScript 7 (`typescript@7` and the `tsgo` preview).
// Installs come from the npm cache when it has them (--prefer-offline): `npm install` in this
// repository fills it with the same versions.
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const ROOT = join(import.meta.dir, "..", "..");
const PROJECT = join(import.meta.dir, "project");
const repo = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  name: string;
  version: string;
  devDependencies: Record<string, string>;
};
/** TypeScript 7 as `npm install typescript` gives it (bun init's peer dependency too). */
const TYPESCRIPT_7 = "7.0.2";
const BUN = process.execPath;
const STEP = 180_000;

/** Run a command; its output, or an error showing the command and everything it printed. */
function run(cmd: string[], cwd: string): string {
  const env = { ...process.env, NO_COLOR: "1", npm_config_update_notifier: "false" };
  const result = Bun.spawnSync({ cmd, cwd, env, stdout: "pipe", stderr: "pipe", timeout: STEP });
  const out = result.stdout.toString();
  if (result.exitCode !== 0) {
    throw new Error(`\`${cmd.join(" ")}\` in ${cwd} exited with ${result.exitCode ?? result.signalCode}\n${out}${result.stderr.toString()}`);
  }
  return out;
}

/** run(), without blocking: several type checks share the machine's cores. */
async function runAsync(cmd: string[], cwd: string): Promise<string> {
  const env = { ...process.env, NO_COLOR: "1" };
  const child = Bun.spawn({ cmd, cwd, env, stdout: "pipe", stderr: "pipe", timeout: STEP });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`\`${cmd.join(" ")}\` in ${cwd} exited with ${code ?? child.signalCode}\n${out}${err}`);
  return out;
}

/** What app.ts prints, wherever it runs. */
const APP_OUTPUT = ["pipe: hello 1.5 2.5, then EOFError", "worker: sum 10, exit code 0", "listener: ping pong"];

let work: string;
let tarball: string;
let packed: { files: Array<{ path: string; size: number }>; size: number; unpackedSize: number };

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "mpconn-package-"));
  // prepack builds dist/ first, as `npm publish` would.
  const out = run(["npm", "pack", "--json", "--pack-destination", work], ROOT);
  [packed] = JSON.parse(out.slice(out.indexOf("[\n"))) as [typeof packed & { filename: string }];
  tarball = join(work, (packed as typeof packed & { filename: string }).filename);
  // The compilers, apart from the projects (module resolution starts from the checked files).
  mkdirSync(join(work, "tools"));
  writeFileSync(join(work, "tools", "package.json"), JSON.stringify({ name: "tools", private: true }));
  run(
    [
      "npm", "install", "--prefer-offline", "--no-audit", "--no-fund",
      `typescript@${TYPESCRIPT_7}`, `@typescript/native-preview@${repo.devDependencies["@typescript/native-preview"]}`,
    ],
    join(work, "tools"),
  );
}, STEP);

/** TypeScript 5 (this repository's), TypeScript 7, and TypeScript 7's `tsgo` preview. */
const COMPILERS = ["tsc 5", `tsc ${TYPESCRIPT_7}`, "tsgo"] as const;
function compiler(name: (typeof COMPILERS)[number]): string {
  if (name === "tsc 5") return join(ROOT, "node_modules", ".bin", "tsc");
  return join(work, "tools", "node_modules", ".bin", name === "tsgo" ? "tsgo" : "tsc");
}

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A fresh directory with a package.json, app.ts, types.ts and the tsconfigs of project/. */
function newProject(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }, null, 2));
  for (const file of ["app.ts", "pool.ts", "tasks.ts", "types.ts", "tsconfig.bun-init.json", "tsconfig.nodenext.json", "tsconfig.strict.json"]) {
    copyFileSync(join(PROJECT, file), join(dir, file));
  }
  return dir;
}

describe("the tarball", () => {
  test("holds dist/ (JavaScript and declarations), README, LICENSE and package.json, nothing else", () => {
    const paths = packed.files.map((f) => f.path);
    for (const path of paths) expect(path).toMatch(/^(dist\/[\w/-]+\.(js|d\.ts)|README\.md|LICENSE|package\.json)$/);
    expect(paths).toContain("dist/index.js");
    expect(paths).toContain("dist/index.d.ts");
    expect(paths).toContain("LICENSE");
    // Each module comes with its declarations.
    for (const path of paths.filter((p) => p.endsWith(".js"))) expect(paths).toContain(path.replace(/\.js$/, ".d.ts"));
    // The codec travels inside the JavaScript; no file is looked up beside it at run time.
    expect(paths.some((p) => p.endsWith(".wasm"))).toBe(false);
  });

  test("its package.json runs nothing at install and needs no other package", () => {
    run(["tar", "-xzf", tarball, "-C", work, "package/package.json"], work);
    const manifest = JSON.parse(readFileSync(join(work, "package", "package.json"), "utf8"));
    for (const script of ["preinstall", "install", "postinstall", "prepare"]) expect(manifest.scripts?.[script]).toBeUndefined();
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.peerDependencies).toBeUndefined();
    expect(manifest.exports["."]).toEqual({
      types: "./dist/index.d.ts",
      bun: "./dist/index.js",
      node: "./dist/not-bun.js",
      default: "./dist/index.js",
    });
    expect(manifest.license).toBe("MIT");
  });
});

describe("installed with npm", () => {
  let dir: string;
  beforeAll(() => {
    dir = newProject("npm-app");
    run(
      ["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", tarball, `@types/bun@${repo.devDependencies["@types/bun"]}`],
      dir,
    );
  }, STEP);

  test("the installed package is the tarball's files", () => {
    const installed = join(dir, "node_modules", repo.name);
    expect(existsSync(join(installed, "dist", "index.js"))).toBe(true);
    expect(existsSync(join(installed, "src"))).toBe(false);
  });

  test("a program using Pipe, spawn and a Listener runs", () => {
    expect(run([BUN, "app.ts"], dir).trim().split("\n")).toEqual(APP_OUTPUT);
  }, STEP);

  test("a Pool runs its workers from the package's own worker entry", () => {
    expect(run([BUN, "pool.ts"], dir).trim()).toBe("pool: 1 4 9 16");
  }, STEP);

  test("under Node.js, importing it says to use Bun", async () => {
    // Every runtime name of the entry point must be in src/not-bun.ts, or Node fails first with a
    // SyntaxError about that name: the list below is what to add there.
    const names = Object.keys(await import(join(ROOT, "src", "index.ts")));
    const stubbed = [...readFileSync(join(ROOT, "src", "not-bun.ts"), "utf8").matchAll(/notBun as (\w+)/g)].map((m) => m[1]);
    expect(names.filter((name) => !stubbed.includes(name))).toEqual([]);
    writeFileSync(join(dir, "node.mjs"), `import { ${names.join(", ")} } from "mpconn";\nconsole.log(typeof Pipe);\n`);
    expect(() => run(["node", "node.mjs"], dir)).toThrow("Error: mpconn runs on Bun, not Node.js: start this program with `bun` (Bun 1.4 or newer)");
  });

  for (const name of COMPILERS) {
    test(`${name}: tsc --init defaults, bun init, NodeNext and strict configs all type-check`, async () => {
      const tsc = compiler(name);
      const configs = join(dir, name.replace(/\W/g, "-"));
      mkdirSync(configs);
      // Each compiler's own `--init`, in a directory of its own (the config covers its directory).
      run([tsc, "--init"], configs);
      for (const file of ["app.ts", "pool.ts", "tasks.ts", "types.ts"]) copyFileSync(join(dir, file), join(configs, file));
      const projects = [join(configs, "tsconfig.json"), "tsconfig.bun-init.json", "tsconfig.nodenext.json", "tsconfig.strict.json"];
      await Promise.all(projects.map((project) => runAsync([tsc, "--noEmit", "-p", project], dir)));
    }, STEP);
  }

  test("a type error in the user's code is still reported (the check can fail)", () => {
    writeFileSync(join(dir, "wrong.ts"), 'import { Pipe } from "mpconn";\nconst [a] = Pipe<number>();\nawait a.send("not a number");\n');
    writeFileSync(join(dir, "tsconfig.wrong.json"), JSON.stringify({ extends: "./tsconfig.strict.json", files: ["wrong.ts"] }));
    expect(() => run([compiler("tsgo"), "--noEmit", "-p", "tsconfig.wrong.json"], dir)).toThrow(
      /wrong\.ts.*TS2345/,
    );
  }, STEP);
});

describe("installed with bun add", () => {
  let dir: string;
  beforeAll(() => {
    dir = newProject("bun-app");
    run([BUN, "add", tarball], dir);
  }, STEP);

  test("a program using Pipe, spawn and a Listener runs", () => {
    expect(run([BUN, "app.ts"], dir).trim().split("\n")).toEqual(APP_OUTPUT);
  }, STEP);

  test("a Pool runs its workers from the package's own worker entry", () => {
    expect(run([BUN, "pool.ts"], dir).trim()).toBe("pool: 1 4 9 16");
  }, STEP);

  test("`bun build --compile` makes a binary that runs from another directory", () => {
    const binary = join(work, "bin", "app");
    run([BUN, "build", "--compile", "app.ts", "--outfile", binary], dir);
    const elsewhere = mkdtempSync(join(work, "elsewhere-"));
    expect(run([binary], elsewhere).trim().split("\n")).toEqual(APP_OUTPUT);
  }, STEP);

  test("`bun build` bundles it into one file that runs", () => {
    const bundle = join(work, "bundle", "app.js");
    run([BUN, "build", "app.ts", "--target", "bun", "--outfile", bundle], dir);
    // A bundle keeps spawning itself through Bun.main (the bundle), so it runs where it lies.
    expect(run([BUN, bundle], join(work, "bundle")).trim().split("\n")).toEqual(APP_OUTPUT);
  }, STEP);

  test("with nothing but mpconn installed (no @types/bun), `tsc --init` defaults type-check", () => {
    expect(existsSync(join(dir, "node_modules", "@types", "bun"))).toBe(false);
    const checked = join(dir, "plain");
    mkdirSync(checked);
    copyFileSync(join(dir, "types.ts"), join(checked, "types.ts"));
    run([compiler("tsc 5"), "--init"], checked);
    for (const name of COMPILERS) run([compiler(name), "--noEmit", "-p", checked], dir);
  }, STEP);
});
