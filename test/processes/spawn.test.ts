// spawn() and parentConnection(): a child with a connected socket to its parent.
import { expect, test, setDefaultTimeout } from "bun:test";
import { Connection, Pipe, spawn } from "../../src/index.ts";
import { bun, fixture } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

test("parentConnection() returns one connection however often it is called", async () => {
  const { process: child, conn } = spawn([bun, fixture("parent-twice.ts")]);
  expect(await conn.recv()).toBe("same");
  conn.close();
  expect(await child.exited).toBe(0);
});

test("parentConnection() in a process spawn() did not start: a clear error", async () => {
  const env = { ...process.env };
  delete env.MPCONN_PARENT_FD;
  const child = Bun.spawn([bun, fixture("parent-twice.ts")], { env, stdout: "pipe" });
  const out = await new Response(child.stdout).text();
  expect(out).toContain("error: parentConnection(): this process was not started by mpconn's spawn()");
  expect(await child.exited).toBe(0);
});

test("spawn(): the child's stdout is inherited unless the options say otherwise", async () => {
  const { process: child, conn } = spawn([bun, "-e", "console.log('from the child')"], { stdout: "pipe" });
  expect(await new Response(child.stdout as ReadableStream<Uint8Array>).text()).toBe("from the child\n");
  expect(await child.exited).toBe(0);
  conn.close();
});

test("spawn(): a bad command is a TypeError", () => {
  expect(() => spawn([] as string[])).toThrow(TypeError);
  expect(() => spawn("bun" as unknown as string[])).toThrow(TypeError);
});

test("test_spawn_close: a Pipe end handed to a child and closed here at once still works", async () => {
  const [ours, theirs] = Pipe();
  const child = Bun.spawn([bun, fixture("echo.ts")], {
    stdio: ["inherit", "inherit", "inherit", theirs.fileno()],
    env: { ...process.env, MPCONN_PARENT_FD: "3" },
  });
  theirs.close(); // never used here, so this end read nothing the child should get
  await ours.send("objects");
  await ours.send({ hello: [1, 2n] });
  expect(await ours.recv()).toEqual({ hello: [1, 2n] });
  ours.close();
  expect(await child.exited).toBe(0);
  expect(theirs.closed).toBe(true);
  expect(ours).toBeInstanceOf(Connection);
});
