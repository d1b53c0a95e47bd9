// The lane between two processes: regions created in one, their descriptors passed to the
// other by SCM_RIGHTS, notices on a stream socket. Both directions, hash-checked; a peer killed
// mid-message; nothing left in either process afterwards.
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, readdirSync } from "node:fs";
import { OSError } from "../../src/errors.ts";
import { closeFd, socketpair } from "../../src/os/libc.ts";
import { LaneEnd, scmDescriptors, socketWire } from "../fixtures/lane-end.ts";
import { lineReader } from "../fixtures/lines.ts";
import { bun, fixture } from "../fixtures/run.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const KiB = 1024;
const MiB = 1024 * KiB;
const OPTIONS = { threshold: 64 * KiB, initialSize: 512 * KiB, maxSize: 8 * MiB };

const mappings = (): number => readFileSync("/proc/self/maps", "utf8").split("\n").filter((line) => line.includes("memfd:mpconn-lane")).length;
const descriptors = (): number => readdirSync("/proc/self/fd").length;
/** The descriptor count once it is back to `expected` (Bun closes a socket just after its close callback), or after 2 s. */
async function descriptorsSettled(expected: number): Promise<number> {
  for (let i = 0; i < 200 && descriptors() !== expected; i++) await Bun.sleep(10);
  return descriptors();
}

/** Start lane-peer.ts in `mode`; our end of the lane to it. */
async function peer(mode: string) {
  const [data, theirData] = socketpair();
  const [fds, theirFds] = socketpair();
  const child = Bun.spawn([bun, fixture("lane-peer.ts"), mode, JSON.stringify(OPTIONS)], {
    stdio: ["ignore", "pipe", "inherit", theirData, theirFds],
  });
  closeFd(theirData);
  closeFd(theirFds);
  const end = new LaneEnd(scmDescriptors(fds), OPTIONS);
  const wire = await socketWire(data, end);
  end.attach(wire);
  /** Close the descriptor socket and wait until Bun has closed the stream socket. */
  const closeFds = async (): Promise<void> => {
    closeFd(fds);
    await wire.closed;
  };
  return { child, end, closeFds };
}

function random(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  crypto.getRandomValues(bytes.subarray(0, Math.min(size, 65536)));
  for (let filled = 65536; filled < size; filled *= 2) bytes.copyWithin(filled, 0, Math.min(filled, size - filled));
  bytes[size - 1] = seed;
  return bytes;
}

describe("lane between processes", () => {
  test("un-awaited sends overwritten after each call come back hash-identical, both ways", async () => {
    const fds = descriptors();
    const { child, end, closeFds } = await peer("echo");
    const sizes = [64 * KiB, MiB, 100, 5 * MiB + 3, 20 * MiB + 1, 7, 300 * KiB, 2 * MiB];
    const buffer = new Uint8Array(Math.max(...sizes));
    const hashes: number[] = [];
    const sent: Promise<void>[] = [];
    for (const [i, size] of sizes.entries()) {
      buffer.set(random(size, i));
      hashes.push(Number(Bun.hash(buffer.subarray(0, size)) & 0xffffffffn));
      sent.push(end.sendBytes(buffer, 0, size));
      buffer.fill(0xab);
    }
    for (const [i, size] of sizes.entries()) {
      const got = await end.recvBytes();
      expect(got.byteLength).toBe(size);
      expect(Number(Bun.hash(got) & 0xffffffffn)).toBe(hashes[i]!);
    }
    await Promise.all(sent);
    end.close();
    const next = lineReader(child.stdout);
    let report = await next();
    while (report !== "" && !report.startsWith("@@peer ")) report = await next();
    expect(await child.exited).toBe(0);
    while ((await next()) !== ""); // to the end of its output: the pipe closes
    const { echoed, mappings: theirs } = JSON.parse(report.slice(7));
    expect(echoed).toBe(sizes.length);
    expect(theirs).toBe(0);
    await closeFds();
    expect(mappings()).toBe(0);
    expect(await descriptorsSettled(fds)).toBe(fds);
  });

  test("a peer killed in the middle of a message: the read fails with CPython's error, nothing leaks", async () => {
    const fds = descriptors();
    const { child, end, closeFds } = await peer("send-big");
    // Its message needs this side to read (64 MiB through 4 MiB pieces): wait for the first piece.
    for (let i = 0; i < 2000 && end.queued === 0; i++) await Bun.sleep(5);
    expect(end.queued).toBe(1);
    child.kill("SIGKILL");
    await child.exited;
    const error = await end.recvBytes().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OSError);
    expect((error as OSError).message).toBe("got end of file during message");
    expect((error as OSError).code).toBe("MESSAGE_TRUNCATED");
    end.close();
    await closeFds();
    expect(mappings()).toBe(0);
    expect(await descriptorsSettled(fds)).toBe(fds);
  });
});
