// Every OSError carries a stable `code`, so programs match codes, not texts (docs/errors.md):
// the errno name where the OS reported one, mpconn's own names otherwise.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Connection, Listener, OSError, Pipe } from "../src/index.ts";
import { closeFd, socketpair, writeAllBlocking } from "../src/os/libc.ts";
import { rejection } from "./fixtures/assert.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

/** The code of the OSError `promise` rejects with (fails the test for anything else). */
async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(OSError);
  return (error as OSError).code;
}

function thrownCode(call: () => unknown): string | undefined {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(OSError);
    return (error as OSError).code;
  }
  throw new Error("expected a throw");
}

/** A connection fed raw bytes by a descriptor we hold. */
function rawPeer(bytes: string): Connection {
  const [ours, theirs] = socketpair();
  writeAllBlocking(theirs, Buffer.from(bytes.replace(/\s/g, ""), "hex"));
  closeFd(theirs);
  return Connection.fromFd(ours);
}

describe("mpconn's own codes", () => {
  test("HANDLE_CLOSED, READ_ONLY, WRITE_ONLY", async () => {
    const [r, w] = Pipe(false);
    expect(await codeOf(r.send(1))).toBe("READ_ONLY");
    expect(await codeOf(w.recv())).toBe("WRITE_ONLY");
    r.close();
    expect(await codeOf(r.recv())).toBe("HANDLE_CLOSED");
    expect(thrownCode(() => r.fileno())).toBe("HANDLE_CLOSED");
    w.close();
  });

  test("BAD_MESSAGE_LENGTH: longer than maxlength, and a length no CPython sender writes", async () => {
    const [a, b] = Pipe();
    await a.sendBytes(new Uint8Array(10));
    expect(await codeOf(b.recvBytes(9))).toBe("BAD_MESSAGE_LENGTH");
    a.close();
    b.close();
    const garbage = rawPeer("80000000");
    expect(await codeOf(garbage.recvBytes())).toBe("BAD_MESSAGE_LENGTH");
    garbage.close();
  });

  test("MESSAGE_TRUNCATED: the peer left in the middle of a message", async () => {
    const cut = rawPeer("00000005 6865");
    expect(await codeOf(cut.recvBytes())).toBe("MESSAGE_TRUNCATED");
    cut.close();
  });

  test("LISTENER_CLOSED", async () => {
    const listener = new Listener();
    listener.close();
    expect(await codeOf(listener.accept())).toBe("LISTENER_CLOSED");
  });
});

describe("errno names", () => {
  test("EPIPE: sending to a peer that is gone", async () => {
    const [a, b] = Pipe();
    b.close();
    // The first write may still be taken by the kernel; the peer's close shows by the next ones.
    let code: string | undefined;
    for (let i = 0; i < 100 && code === undefined; i++) {
      try {
        await a.sendBytes(new Uint8Array(1024));
        await new Promise((resolve) => setTimeout(resolve, 5));
      } catch (error) {
        code = (error as OSError).code;
      }
    }
    expect(code).toBe("EPIPE");
    a.close();
  });

  test("ENOENT, ECONNREFUSED, EADDRINUSE, EBADF", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mpconn-codes-"));
    expect(await codeOf(Client(join(dir, "nobody")))).toBe("ENOENT");
    const listener = new Listener(["127.0.0.1", 0]);
    const port = (listener.address as [string, number])[1];
    expect(thrownCode(() => new Listener(["127.0.0.1", port]))).toBe("EADDRINUSE");
    listener.close();
    expect(await codeOf(Client(["127.0.0.1", port]))).toBe("ECONNREFUSED");
    const [x, y] = socketpair();
    closeFd(x);
    closeFd(y);
    expect(thrownCode(() => Connection.fromFd(x))).toBe("EBADF");
    rmSync(dir, { recursive: true, force: true });
  });
});
