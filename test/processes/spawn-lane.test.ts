// The shared-memory lane between spawn() and parentConnection(): on by default between mpconn
// processes, invisible to a CPython child.
import { expect, test, setDefaultTimeout } from "bun:test";
import { OSError } from "../../src/errors.ts";
import { Pipe, spawn, type Connection } from "../../src/index.ts";
import { bun, fixture } from "../fixtures/run.ts";
import { pyenvPythons } from "../fixtures/python.ts";
import { createHash } from "node:crypto";
import { hash, laneOf, MiB, random } from "../fixtures/lane.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

test("an mpconn child: large and small messages go both ways exactly, and the lane carried the large ones", async () => {
  const { process: child, conn } = spawn([bun, fixture("lane-child.ts"), "echo"], { stdout: "pipe" });
  // Until the child's HELLO arrived (before anything else it writes), everything takes the socket.
  await conn.sendBytes(new TextEncoder().encode("hi"));
  expect(text(await conn.recvBytes())).toBe("hi");
  expect(laneOf(conn)!.active).toBe(true);
  const sizes = [4 * MiB, 10, 300 * 1024, 0, 9 * MiB, 7];
  const bodies = sizes.map(random);
  const buf = new Uint8Array(9 * MiB);
  const sends = bodies.map((body) => {
    buf.set(body);
    const sent = conn.sendBytes(buf, 0, body.byteLength);
    buf.fill(0x55); // overwritten right after the call
    return sent;
  });
  for (const body of bodies) expect(hash(await conn.recvBytes())).toBe(hash(body));
  await Promise.all(sends);
  await conn.sendBytes(new TextEncoder().encode("done"));
  const childRegions = JSON.parse(text(await conn.recvBytes()));
  expect(childRegions.sending).toBeGreaterThan(0);
  expect(childRegions.receiving).toBeGreaterThan(0);
  expect(laneOf(conn)!.active).toBe(true);
  expect(laneOf(conn)!.regions.sending).toBeGreaterThan(0);
  conn.close();
  expect(await child.exited).toBe(0);
  // The child closed its end after our EOF: no descriptor or mapping of the lane left there.
  // (Its connection's descriptor is gone; the process's descriptor sharer, one listening
  // socket shared with connection passing, stays once used.)
  const report = JSON.parse(await new Response(child.stdout as ReadableStream<Uint8Array>).text());
  expect(report.after.maps).toBe(0);
  expect(report.after.memfds).toBe(0);
  expect(report.after.fds).toBeLessThanOrEqual(report.before.fds);
});

test("spawn({ sharedMemory: false }): the socket carries everything, the child has no lane", async () => {
  const { process: child, conn } = spawn([bun, fixture("lane-child.ts"), "echo"], { sharedMemory: false });
  const body = random(4 * MiB);
  await conn.sendBytes(body);
  expect(hash(await conn.recvBytes())).toBe(hash(body));
  await conn.sendBytes(new TextEncoder().encode("done"));
  expect(text(await conn.recvBytes())).toBe("null");
  expect(laneOf(conn)).toBeNull();
  conn.close();
  expect(await child.exited).toBe(0);
});

test("a child SIGKILLed while sends wait for room and a receive waits: the socket's errors, promptly", async () => {
  const { process: child, conn } = spawn([bun, fixture("lane-child.ts"), "idle"]);
  expect(text(await conn.recvBytes())).toBe("ready");
  expect(laneOf(conn)!.active).toBe(true);
  const sends = Array.from({ length: 12 }, () => conn.sendBytes(new Uint8Array(MiB)).then(() => "sent", (error: unknown) => error));
  const receive = conn.recvBytes().catch((error: unknown) => error);
  child.kill("SIGKILL");
  await child.exited;
  expect(((await receive) as Error).name).toBe("EOFError");
  for (const outcome of await Promise.all(sends)) if (outcome !== "sent") expect(outcome).toBeInstanceOf(OSError);
  // As on the socket: sending to a dead peer fails (broken pipe), through the lane or not.
  const late = await conn.sendBytes(new Uint8Array(MiB)).catch((error: unknown) => error);
  expect(late).toBeInstanceOf(OSError);
  conn.close();
});

test("a Pipe end with the lane, with messages in flight both ways, passed to a child: it retires its lane, and every message arrives exactly", async () => {
  const { process: child, conn } = spawn([bun, fixture("lane-mover.ts")]);
  expect(await conn.recv()).toBe("ready");
  const [a, b] = Pipe(true, { sharedMemory: true });
  const first = [random(3 * MiB), random(10), random(MiB)];
  const sends = first.map((body) => b.sendBytes(body)); // unread at a when it moves
  const aSent = [random(2 * MiB), random(20)];
  const aSends = aSent.map((body) => a.sendBytes(body)); // unread at b when a moves
  await conn.send({ conn: a });
  a.close();
  for (const body of aSent) expect(hash(await b.recvBytes())).toBe(hash(body));
  for (const body of first) expect(hash(await b.recvBytes())).toBe(hash(body)); // echoed by the child
  const later = [random(4 * MiB), random(300 * 1024)];
  for (const body of later) {
    await b.sendBytes(body);
    expect(hash(await b.recvBytes())).toBe(hash(body));
  }
  await Promise.all([...sends, ...aSends]);
  b.close();
  expect(await conn.recv()).toBe(first.length + later.length);
  conn.close();
  expect(await child.exited).toBe(0);
});

const python = pyenvPythons(/^3\.12/)[0];
test.skipIf(!python)("a CPython child under spawn(): 4 MiB both ways exactly, and no byte of the lane", async () => {
  const { process: child, conn } = spawn([python!, fixture("python/lane_peer.py")]);
  const body = random(4 * MiB);
  await conn.sendBytes(body);
  expect(hash(await conn.recvBytes())).toBe(hash(body));
  const theirs = await conn.recvBytes();
  expect(theirs.byteLength).toBe(4 * MiB);
  expect(hash(theirs)).toBe(hash(new Uint8Array(Buffer.concat(Array.from({ length: (4 * MiB) / 32 }, () => createHash("sha256").update("python").digest())))));
  await conn.sendBytes(new TextEncoder().encode("bye"));
  expect(text(await conn.recvBytes())).toBe("ok");
  expect(laneOf(conn)!.active).toBe(false);
  conn.close();
  expect(await child.exited).toBe(0);
});

test("a child whose memfd_create fails (no descriptor left) sends its large messages over the socket, exactly", async () => {
  const { process: child, conn } = spawn(["sh", "-c", 'ulimit -n 256 && exec "$0" "$@"', bun, fixture("lane-no-memfd.ts")]);
  await conn.sendBytes(new TextEncoder().encode("go"));
  const received = [await conn.recvBytes(), await conn.recvBytes(), await conn.recvBytes(), await conn.recvBytes()];
  const report = (await conn.recv()) as { hashes: string[]; fillers: number; memfds: number; laneError: string | null };
  expect(report.fillers).toBeGreaterThan(0); // it really ran out of descriptors
  expect(report.laneError).toContain("memfd_create"); // and the lane really tried
  expect(received.map((body) => body.byteLength)).toEqual([3 * MiB, 10, 2 * MiB, 4 * MiB]);
  expect(received.map(hash)).toEqual(report.hashes);
  expect(report.memfds).toBe(0);
  await conn.sendBytes(new TextEncoder().encode("bye"));
  expect(await child.exited).toBe(0);
  conn.close();
});
