// Type-checked under `tsc --init`'s defaults in a project with mpconn and nothing else (no
// @types/bun): mpconn's own types must hold there. The @ts-expect-error lines fail the check if
// mpconn's types were lost (an `any` accepts everything).
import { AuthenticationError, Client, EOFError, Listener, Pipe, wait, type Address, type Connection } from "mpconn";

export async function roundTrip(address: Address): Promise<number> {
  const conn: Connection<number> = await Client<number>(address, { authkey: "secret", serializer: "json" });
  await conn.send(41);
  const answer: number = await conn.recv();
  conn.close();
  return answer;
}

export async function serve(): Promise<string | null> {
  using listener = new Listener<number>(["127.0.0.1", 0], { authkey: "secret" });
  const ready = await wait([listener], 1);
  if (ready.length === 0) return null;
  try {
    const conn = await listener.accept();
    await conn.send((await conn.recv()) + 1);
    conn.close();
  } catch (error) {
    if (error instanceof AuthenticationError || error instanceof EOFError) return error.message;
    throw error;
  }
  return typeof listener.address === "string" ? listener.address : listener.address[0];
}

export function pipe(): [Connection<string>, Connection<string>] {
  return Pipe<string>(true, { serializer: "structured" });
}

// @ts-expect-error: a TCP address is [host, port] with a numeric port
export const wrongPort = Client(["127.0.0.1", "6000"]);
// @ts-expect-error: there is no "msgpack" serializer by that name
export const wrongSerializer = Pipe(true, { serializer: "msgpack" });
