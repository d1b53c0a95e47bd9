// The shared-memory lane on unix Listener/Client: agreed inside the authkey handshake (a keyed
// tag in each side's challenge), invisible to a CPython peer.
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { Client, Connection, Listener } from "../../src/index.ts";
import { pyenvPythons } from "../fixtures/python.ts";
import { fixture } from "../fixtures/run.ts";

const MiB = 1 << 20;
const KEY = "lane key";
const hash = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");
const laneOf = (conn: Connection): { active: boolean; regions: { sending: number; receiving: number } } | null =>
  (conn as unknown as { lane: { lane: { active: boolean; regions: { sending: number; receiving: number } } } | null }).lane?.lane ?? null;

function random(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  return bytes;
}

async function exchange(server: Connection, client: Connection): Promise<void> {
  const bodies = [random(5 * MiB), random(3), random(2 * MiB)];
  const sends = bodies.flatMap((body) => [server.sendBytes(body), client.sendBytes(body)]);
  for (const body of bodies) {
    expect(hash(await client.recvBytes())).toBe(hash(body));
    expect(hash(await server.recvBytes())).toBe(hash(body));
  }
  await Promise.all(sends);
}

test("both ends with sharedMemory and an authkey: large messages take the lane both ways", async () => {
  using listener = new Listener(undefined, { authkey: KEY, sharedMemory: true });
  const [server, client] = await Promise.all([listener.accept(), Client(listener.address as string, { authkey: KEY, sharedMemory: true })]);
  expect(laneOf(server)!.active).toBe(true);
  expect(laneOf(client)!.active).toBe(true);
  await exchange(server, client);
  expect(laneOf(server)!.regions.sending).toBeGreaterThan(0);
  expect(laneOf(client)!.regions.sending).toBeGreaterThan(0);
  server.close();
  client.close();
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

test("sharedMemory without an authkey, or of the wrong type, is a TypeError; fromFd refuses it", async () => {
  expect(() => new Listener(undefined, { sharedMemory: true })).toThrow(/needs an authkey/);
  await expect(Client("/nonexistent/x", { sharedMemory: true })).rejects.toThrow(TypeError);
  expect(() => new Listener(undefined, { authkey: KEY, sharedMemory: 1 as unknown as boolean })).toThrow(TypeError);
  expect(() => Connection.fromFd(0, { sharedMemory: true })).toThrow(/fromFd\(\) cannot use sharedMemory/);
});

const python = pyenvPythons(/^3\.12/)[0];
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
