// The code blocks of README.md, docs/*.md and examples/python/README.md run as written. Each ```ts, ```sh or ```python block
// is run unless its info string marks it (CONTRIBUTING.md, "Code blocks in the docs"):
//   fragment        a piece of a program (a signature, an excerpt): not run
//   norun           a whole program or command that this test does not run (installs, benchmarks,
//                   the test suite itself, TLS with certificates it does not have)
//   file=NAME       written as NAME beside the runnable blocks of its section (a worker, a server)
//   background      with file=NAME: started before the next runnable block of the section, which
//                   waits until it listens; stopped after that block if it has not ended by itself
// ```text blocks are output, never run. A section is the text between two headings: each runs in
// a fresh directory where `import ... from "mpconn"` is this repository's source (a tsconfig path),
// as it would be the installed package for a reader. ```sh blocks run from the repository root.
import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const ROOT = join(import.meta.dir, "..", "..");
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
  "examples/python/README.md",
  "CONTRIBUTING.md",
];
const LANGUAGES = new Set(["ts", "sh", "python", "text"]);
const MARKS = new Set(["fragment", "norun", "background"]);
const BLOCK_TIMEOUT = 60_000;

interface Block {
  doc: string;
  line: number;
  section: string;
  lang: string;
  marks: Set<string>;
  file: string | undefined;
  code: string;
}

function blocksOf(doc: string): Block[] {
  const lines = readFileSync(join(ROOT, doc), "utf8").split("\n");
  const blocks: Block[] = [];
  let section = "(top)";
  for (let i = 0; i < lines.length; i++) {
    const heading = /^#+\s+(.*)/.exec(lines[i]!);
    if (heading) section = heading[1]!;
    const fence = /^```(.*)$/.exec(lines[i]!);
    if (!fence) continue;
    const [lang = "", ...words] = fence[1]!.trim().split(/\s+/);
    const start = i;
    const body: string[] = [];
    while (++i < lines.length && lines[i] !== "```") body.push(lines[i]!);
    const file = words.find((w) => w.startsWith("file="))?.slice(5);
    blocks.push({ doc, line: start + 1, section, lang, marks: new Set(words.filter((w) => !w.startsWith("file="))), file, code: body.join("\n") + "\n" });
  }
  return blocks;
}

const runnable = (b: Block) => b.lang !== "text" && b.file === undefined && !b.marks.has("fragment") && !b.marks.has("norun");

const work = mkdtempSync(join(tmpdir(), "mpconn-docs-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// The docs say `bun`: that is this test's own binary, whatever its file is called (bun.exe in node_modules).
const bin = mkdtempSync(join(tmpdir(), "mpconn-docs-bin-"));
symlinkSync(process.execPath, join(bin, "bun"));
afterAll(() => rmSync(bin, { recursive: true, force: true }));
const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, NO_COLOR: "1" };

/** A fresh directory in which "mpconn" is this repository's source. */
function sectionDir(): string {
  const dir = mkdtempSync(join(work, "section-"));
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions: { paths: { mpconn: [join(ROOT, "src", "index.ts")] } } }));
  return dir;
}

function command(lang: string, file: string): string[] {
  if (lang === "ts") return [process.execPath, file];
  if (lang === "python") return ["python3", file];
  throw new Error(`cannot run a ${lang} file`);
}

/** Whether process `pid` has a listening TCP or unix socket (read from /proc: connecting would disturb it). */
function listening(pid: number): boolean {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`)
        .map((fd) => {
          try {
            return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
          } catch {
            return undefined;
          }
        })
        .filter((inode): inode is string => inode !== undefined),
    );
  } catch {
    return false;
  }
  for (const table of ["tcp", "tcp6"]) {
    for (const row of readFileSync(`/proc/net/${table}`, "utf8").split("\n").slice(1)) {
      const cols = row.trim().split(/\s+/);
      if (cols[3] === "0A" && inodes.has(cols[9]!)) return true; // 0A: LISTEN
    }
  }
  for (const row of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
    const cols = row.trim().split(/\s+/);
    if (cols[3] === "00010000" && inodes.has(cols[6]!)) return true; // __SO_ACCEPTCON
  }
  return false;
}

async function output(stream: ReadableStream<Uint8Array> | number | undefined): Promise<string> {
  return stream instanceof ReadableStream ? await new Response(stream).text() : "";
}

/** Run a block to its end; rejects with everything it printed if it fails or takes too long. */
async function runBlock(block: Block, dir: string): Promise<string> {
  let cmd: string[];
  let cwd = dir;
  if (block.lang === "sh") {
    // Its own process group, so that whatever it leaves in the background is stopped with it.
    cmd = ["setsid", "sh", "-ec", block.code];
    cwd = ROOT;
  } else {
    const name = block.lang === "ts" ? (/^\/\/ ([\w.-]+\.ts)\b/.exec(block.code)?.[1] ?? "main.ts") : "main.py";
    writeFileSync(join(dir, name), block.code);
    cmd = command(block.lang, name);
  }
  const child = Bun.spawn(cmd, { cwd, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  // An sh block is its own process group: what it left in the background is stopped with it
  // (a server it started also holds its output pipes open).
  const stop = (signal: NodeJS.Signals): void => {
    try {
      process.kill(block.lang === "sh" ? -child.pid : child.pid, signal);
    } catch {
      // nothing was left running
    }
  };
  const timer = setTimeout(() => stop("SIGKILL"), BLOCK_TIMEOUT);
  const printed = Promise.all([output(child.stdout), output(child.stderr)]);
  const code = await child.exited;
  if (block.lang === "sh") stop("SIGTERM");
  const [out, err] = await printed;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${block.doc}:${block.line} exited with ${code ?? child.signalCode}\n--- stdout\n${out}--- stderr\n${err}`);
  return out;
}

/** Start a background block and wait until it listens. */
async function startBackground(block: Block, dir: string) {
  const child = Bun.spawn(command(block.lang, block.file!), { cwd: dir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const deadline = Date.now() + BLOCK_TIMEOUT;
  while (!listening(child.pid)) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${block.doc}:${block.line} (${block.file}) never listened\n${await output(child.stderr)}`);
    }
    await Bun.sleep(20);
  }
  return child;
}

const all = DOCS.flatMap(blocksOf);

describe("every code block is marked for what it is", () => {
  for (const block of all) {
    test(`${block.doc}:${block.line}`, () => {
      expect(LANGUAGES.has(block.lang) ? block.lang : `unknown language "${block.lang}"`).toBe(block.lang);
      for (const mark of block.marks) expect(MARKS.has(mark) ? mark : `unknown mark "${mark}"`).toBe(mark);
      if (block.marks.has("background")) expect(block.file).toBeDefined();
      if (block.file !== undefined) expect(block.file).toMatch(/^[\w-]+\.(ts|py)$/);
    });
  }

  test("the docs have runnable blocks at all (the parser found them)", () => {
    expect(all.filter(runnable).length).toBeGreaterThanOrEqual(14);
  });
});

// One test per section that has something to run, its blocks in document order.
const sections = new Map<string, Block[]>();
for (const block of all) {
  const key = `${block.doc} § ${block.section}`;
  sections.set(key, [...(sections.get(key) ?? []), block]);
}

describe("runnable blocks run", () => {
  for (const [name, blocks] of sections) {
    if (!blocks.some(runnable)) continue;
    test(
      name,
      async () => {
        const dir = sectionDir();
        for (const block of blocks) if (block.file !== undefined) writeFileSync(join(dir, block.file), block.code);
        let server: Awaited<ReturnType<typeof startBackground>> | null = null;
        for (const block of blocks) {
          if (block.marks.has("background")) server = await startBackground(block, dir);
          if (!runnable(block)) continue;
          try {
            await runBlock(block, dir);
          } finally {
            if (server) {
              // A server that serves one client ends by itself; one that serves forever is stopped.
              const ended = await Promise.race([server.exited.then(() => true), Bun.sleep(1_000).then(() => false)]);
              if (!ended) server.kill("SIGTERM");
              await server.exited;
              server = null;
            }
          }
        }
      },
      4 * BLOCK_TIMEOUT,
    );
  }
});
