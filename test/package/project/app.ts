// A user's program, as test/package/package.test.ts installs, runs and compiles it: a Pipe, a
// worker started with spawn() (this same file, or this same binary once compiled), and a
// Listener with a Client, all through the published package.
import { Client, EOFError, Listener, Pipe, parentConnection, spawn } from "mpconn";

if (process.env["MPCONN_PARENT_FD"] !== undefined) {
  // The worker: answers each list with its sum until the parent closes its end.
  const conn = parentConnection<number[]>();
  for await (const numbers of conn) await conn.send([numbers.reduce((sum, n) => sum + n, 0)]);
  conn.close();
} else {
  const [a, b] = Pipe<{ greeting: string; data: Float64Array }>();
  await a.send({ greeting: "hello", data: new Float64Array([1.5, 2.5]) });
  const got = await b.recv();
  a.close();
  const end = await b.recv().catch((error: unknown) => error);
  b.close();
  console.log(`pipe: ${got.greeting} ${got.data.join(" ")}, then ${end instanceof EOFError ? "EOFError" : String(end)}`);

  // Compiled by `bun build --compile`, the program is the binary itself; otherwise Bun runs this file.
  const self = Bun.main.startsWith("/$bunfs/") ? [process.execPath] : [process.execPath, Bun.main];
  const { process: worker, conn } = spawn<number[]>(self);
  await conn.send([1, 2, 3, 4]);
  const [sum] = await conn.recv();
  conn.close();
  console.log(`worker: sum ${sum}, exit code ${await worker.exited}`);

  using listener = new Listener<string>(undefined, { authkey: "secret" });
  const [client, server] = await Promise.all([Client<string>(listener.address, { authkey: "secret" }), listener.accept()]);
  await client.send("ping");
  await server.send(`${await server.recv()} pong`);
  console.log(`listener: ${await client.recv()}`);
  client.close();
  server.close();
}
