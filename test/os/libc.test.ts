// src/os/libc.ts: errno → OSError as Python words it, and the socket calls the rest of mpconn uses.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OSError } from "../../src/index.ts";
import { brokenPipe, closeFd, connectUnix, dup, dupTo, isOpen, osError, socketpair } from "../../src/os/libc.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

describe("osError", () => {
  test("Python's words and the errno name as code, from a name or a number", () => {
    const pipe = osError("EPIPE");
    expect(pipe).toBeInstanceOf(OSError);
    expect([pipe.message, pipe.code]).toEqual(["[Errno 32] Broken pipe", "EPIPE"]);
    expect(osError(104).code).toBe("ECONNRESET");
    expect(osError(104).message).toBe("[Errno 104] Connection reset by peer");
    expect(osError("ENOENT", "/nowhere").message).toBe("[Errno 2] No such file or directory: /nowhere");
  });

  test("a name the platform has no number for keeps its fallback text and its name", () => {
    const error = osError("ESOMETHING", undefined, { fallback: "Bun said so" });
    expect([error.message, error.code]).toEqual(["Bun said so", "ESOMETHING"]);
  });

  test("brokenPipe() is EPIPE", () => {
    expect(brokenPipe().code).toBe("EPIPE");
    expect(brokenPipe().message).toBe("[Errno 32] Broken pipe");
  });
});

describe("sockets and descriptors", () => {
  const dir = mkdtempSync(join(tmpdir(), "mpconn-libc-"));

  test("connectUnix: ENOENT for no file, ECONNREFUSED for a socket nobody listens on", () => {
    const missing = (() => {
      try {
        connectUnix(join(dir, "missing"));
      } catch (error) {
        return error as OSError;
      }
      throw new Error("connected to nothing");
    })();
    expect(missing.code).toBe("ENOENT");
    expect(missing.message).toStartWith("[Errno 2] No such file or directory: connect to ");
    const plain = join(dir, "file");
    writeFileSync(plain, "");
    expect(() => connectUnix(plain)).toThrow(expect.objectContaining({ code: "ECONNREFUSED" }));
    expect(() => connectUnix(join(dir, "x".repeat(120)))).toThrow(expect.objectContaining({ code: "ENAMETOOLONG" }));
    rmSync(dir, { recursive: true, force: true });
  });

  test("connectUnix reaches a listening socket", () => {
    const home = mkdtempSync(join(tmpdir(), "mpconn-libc-"));
    const server = Bun.listen({ unix: join(home, "s"), socket: { data() {} } });
    const fd = connectUnix(join(home, "s"));
    expect(isOpen(fd)).toBe(true);
    closeFd(fd);
    server.stop(true);
    rmSync(home, { recursive: true, force: true });
  });

  test("dup and dupTo give open, distinct descriptors", () => {
    const [a, b] = socketpair();
    const copy = dup(a);
    expect(copy).not.toBe(a);
    expect(isOpen(copy)).toBe(true);
    expect(dupTo(a, 333)).toBe(333);
    expect(isOpen(333)).toBe(true);
    for (const fd of [a, b, copy, 333]) closeFd(fd);
    expect(isOpen(333)).toBe(false);
  });
});
