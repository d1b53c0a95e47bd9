// The shared-memory lane on unix Listener/Client: agreed inside the authkey handshake (a keyed
// tag in each side's challenge), invisible to a CPython peer.
import { expect, test, setDefaultTimeout } from "bun:test";
import { Client, Connection, Listener } from "../../src/index.ts";
import { pyenvPythons } from "../fixtures/python.ts";
import { bun, fixture } from "../fixtures/run.ts";
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from "node:fs";
import { inodeOf } from "../../src/os/sock-diag.ts";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeFd, socketpair } from "../../src/os/libc.ts";
import { hash, laneOf, MiB, random } from "../fixtures/lane.ts";

// bun test applies test/setup.ts's default only to the first file: each file sets its own.
setDefaultTimeout(60_000);

const KEY = "lane key";

async function exchange(server: Connection, client: Connection): Promise<void> {
  const bodies = [random(5 * MiB), random(3), random(2 * MiB)];
  const sends = bodies.flatMap((body) => [server.sendBytes(body), client.sendBytes(body)]);
  for (const body of bodies) {
    expect(hash(await client.recvBytes())).toBe(hash(body));
    expect(hash(await server.recvBytes())).toBe(hash(body));
  }
  await Promise.all(sends);
}

/** Both ends speak the lane, and large messages both ways went through it. */
async function exchangeThroughLane(server: Connection, client: Connection): Promise<void> {
  expect(laneOf(server)!.active).toBe(true);
  expect(laneOf(client)!.active).toBe(true);
  await exchange(server, client);
  expect(laneOf(server)!.regions.sending).toBeGreaterThan(0);
  expect(laneOf(client)!.regions.sending).toBeGreaterThan(0);
  server.close();
  client.close();
}

test("both ends with sharedMemory and an authkey: large messages take the lane both ways", async () => {
  using listener = new Listener(undefined, { authkey: KEY, sharedMemory: true });
  const [server, client] = await Promise.all([listener.accept(), Client(listener.address as string, { authkey: KEY, sharedMemory: true })]);
  await exchangeThroughLane(server, client);
});

test("only one end with sharedMemory: no lane, the socket carries everything", async () => {
  for (const [listenerLane, clientLane] of [[true, false], [false, true]]) {
    using listener = new Listener(undefined, { authkey: KEY, sharedMemory: listenerLane });
    const [server, client] = await Promise.all([listener.accept(), Client(listener.address as string, { authkey: KEY, sharedMemory: clientLane })]);
    expect(laneOf(server)).toBeNull();
    expect(laneOf(client)).toBeNull();
    await exchange(server, client);
    server.close();
    client.close();
  }
});

test("without an authkey, both ends with sharedMemory: the lane, through the kernel's markers", async () => {
  using listener = new Listener(undefined, { sharedMemory: true });
  const [server, client] = await Promise.all([listener.accept(), Client(listener.address as string, { sharedMemory: true })]);
  // The end that looked second found the other's marker and said HELLO first: one round trip each way.
  await client.sendBytes(new Uint8Array(1));
  await server.recvBytes();
  await server.sendBytes(new Uint8Array(1));
  await client.recvBytes();
  await exchangeThroughLane(server, client);
});

test("sharedMemory of the wrong type is a TypeError", async () => {
  expect(() => new Listener(undefined, { authkey: KEY, sharedMemory: 1 as unknown as boolean })).toThrow(TypeError);
  await expect(Client("/nonexistent/x", { sharedMemory: "yes" as unknown as boolean })).rejects.toThrow(TypeError);
  expect(() => Connection.fromFd(0, { sharedMemory: "on" as unknown as boolean })).toThrow(TypeError);
});


test("Connection.fromFd with sharedMemory on both ends of a socketpair: the lane, found through the kernel; markers gone after close", async () => {
  const [x, y] = socketpair();
  const a = Connection.fromFd(x, { sharedMemory: true });
  const b = Connection.fromFd(y, { sharedMemory: true });
  const markers = (): string[] => readdirSync(join(tmpdir(), `mpconn-lane-${process.getuid!()}`));
  expect(markers().length).toBeGreaterThanOrEqual(2);
  // a looked first and found nothing: it uses the lane once b's HELLO (b's first frame) arrived.
  await b.sendBytes(new Uint8Array(1));
  await a.recvBytes();
  await exchange(b, a);
  expect(laneOf(a)!.active).toBe(true);
  expect(laneOf(b)!.active).toBe(true);
  expect(laneOf(a)!.regions.sending).toBeGreaterThan(0);
  expect(laneOf(b)!.regions.sending).toBeGreaterThan(0);
  const before = markers().length;
  a.close();
  b.close();
  expect(markers().length).toBe(before - 2);
});

test("Connection.fromFd with sharedMemory on one end only: the socket carries everything", async () => {
  for (const first of [true, false]) {
    const [x, y] = socketpair();
    const a = Connection.fromFd(x, { sharedMemory: first });
    const b = Connection.fromFd(y, { sharedMemory: !first });
    await exchange(a, b);
    for (const conn of [a, b]) expect(laneOf(conn)?.active ?? false).toBe(false);
    a.close();
    b.close();
  }
});

test("Connection.fromFd: a stale marker of the peer's socket (a process that does not hold it) does not count, and nothing is written", async () => {
  const [x, y] = socketpair();
  const dir = join(tmpdir(), `mpconn-lane-${process.getuid!()}`);
  const fakes = [1, 2 ** 22 + 12345].map((pid) => join(dir, `${inodeOf(y)}-${pid}`));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const fake of fakes) writeFileSync(fake, "");
  const a = Connection.fromFd(x, { sharedMemory: true });
  const b = Connection.fromFd(y);
  expect(laneOf(a)!.active).toBe(false);
  expect(await b.poll(0)).toBe(false); // no HELLO, nor anything else
  await exchange(a, b);
  expect(laneOf(a)!.active).toBe(false);
  for (const fake of fakes) unlinkSync(fake);
  a.close();
  b.close();
});

test("Connection.fromFd with sharedMemory in a child, on an inherited socket: the lane both ways", async () => {
  const [ours, theirs] = socketpair();
  const child = Bun.spawn([bun, fixture("lane-child.ts"), "echo", "fromfd"], {
    stdio: ["inherit", "pipe", "inherit", theirs],
    env: { ...process.env, MPCONN_PARENT_FD: "3" },
  });
  closeFd(theirs);
  const conn = Connection.fromFd(ours, { sharedMemory: true });
  // Either end may have looked first: a round trip, and each has seen the other's HELLO or marker.
  await conn.sendBytes(new TextEncoder().encode("hi"));
  expect(new TextDecoder().decode(await conn.recvBytes())).toBe("hi");
  const body = random(6 * MiB);
  await Promise.all([conn.sendBytes(body), conn.recvBytes().then((got) => expect(hash(got)).toBe(hash(body)))]);
  await conn.sendBytes(new TextEncoder().encode("done"));
  const regions = JSON.parse(new TextDecoder().decode(await conn.recvBytes()));
  expect(regions.sending).toBeGreaterThan(0);
  expect(regions.receiving).toBeGreaterThan(0);
  expect(laneOf(conn)!.regions.sending).toBeGreaterThan(0);
  conn.close();
  expect(await child.exited).toBe(0);
});

const python = pyenvPythons(/^3\.12/)[0];
test.skipIf(!python)("Connection.fromFd with sharedMemory, a CPython peer: 4 MiB both ways, and no byte of the lane", async () => {
  const [ours, theirs] = socketpair();
  const child = Bun.spawn([python!, fixture("python/lane_peer.py")], {
    stdio: ["inherit", "inherit", "inherit", theirs],
    env: { ...process.env, MPCONN_PARENT_FD: "3" },
  });
  closeFd(theirs);
  const conn = Connection.fromFd(ours, { sharedMemory: true });
  const body = random(4 * MiB);
  await conn.sendBytes(body);
  expect(hash(await conn.recvBytes())).toBe(hash(body));
  expect((await conn.recvBytes()).byteLength).toBe(4 * MiB);
  await conn.sendBytes(new TextEncoder().encode("bye"));
  expect(new TextDecoder().decode(await conn.recvBytes())).toBe("ok");
  expect(laneOf(conn)!.active).toBe(false);
  conn.close();
  expect(await child.exited).toBe(0);
});

test.skipIf(!python)("a CPython client of a Listener with sharedMemory: 4 MiB both ways, and no byte of the lane", async () => {
  using listener = new Listener(undefined, { authkey: KEY, sharedMemory: true });
  const child = Bun.spawn([python!, fixture("python/lane_client.py"), listener.address as string], { stderr: "inherit" });
  const server = await listener.accept();
  expect(laneOf(server)).toBeNull();
  const body = random(4 * MiB);
  await server.sendBytes(body);
  expect(hash(await server.recvBytes())).toBe(hash(body));
  await server.sendBytes(new TextEncoder().encode("bye"));
  expect(new TextDecoder().decode(await server.recvBytes())).toBe("ok");
  server.close();
  expect(await child.exited).toBe(0);
});
