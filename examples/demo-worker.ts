// The demo's worker: counts what arrives and answers each round with the count.
import { parentConnection } from "../src/index.ts";

const conn = parentConnection();
while (true) {
  const round = (await conn.recv()) as { kind: "bytes" | "objects" | "echo" | "stop"; count: number } | undefined;
  if (!round || round.kind === "stop") break;
  if (round.kind === "echo") {
    for (let i = 0; i < round.count; i++) await conn.sendBytes(await conn.recvBytes());
    continue;
  }
  let bytes = 0;
  for (let i = 0; i < round.count; i++) {
    if (round.kind === "bytes") bytes += (await conn.recvBytes()).byteLength;
    else bytes += ((await conn.recv()) as { values: number[] }).values.length;
  }
  await conn.send({ received: round.count, bytes });
}
conn.close();
