// wait(): Python's multiprocessing.connection.wait — which of these objects can be used
// without waiting? Connections (a message or EOF can be received), Listeners (a connection can
// be accepted) and Bun subprocesses (the process exited). Nothing here polls: each object says
// when it changes, and the check runs then.
import { Connection } from "./connection.ts";
import { OSError } from "../errors.ts";
import { Listener } from "../endpoints/listener.ts";

/** What wait() needs of a process: Bun's Subprocess has it. */
export interface WaitableProcess {
  readonly pid: number;
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | number | null;
}

export type Waitable = Connection<unknown> | Listener<unknown> | WaitableProcess;

/**
 * The objects that are ready, in the order given. `timeout` in seconds: omitted or null waits
 * until one is ready; 0 or negative looks once (after letting the event loop deliver what is
 * already on its way); `[]` on timeout.
 */
export async function wait<W extends Waitable>(objects: Iterable<W>, timeout?: number | null): Promise<W[]> {
  if (timeout !== undefined && timeout !== null && (typeof timeout !== "number" || Number.isNaN(timeout))) {
    throw new TypeError(`timeout must be a number of seconds or null, not ${typeof timeout === "number" ? "NaN" : typeof timeout}`);
  }
  if (objects === null || typeof (objects as Partial<Iterable<W>>)?.[Symbol.iterator] !== "function") {
    throw new TypeError("wait() needs an iterable of Connections, Listeners or subprocesses");
  }
  const items = [...objects];
  const seen = new Set<W>();
  for (const item of items) {
    check(item);
    // Python raises KeyError here; an argument mistake is a TypeError in mpconn.
    if (seen.has(item)) throw new TypeError(`${describe(item)} is already registered`);
    seen.add(item);
  }
  const readyOnes = () => items.filter(isReady);

  // First let the event loop deliver what is already on its way, so that "sent, then waited"
  // finds the message, as it would in the kernel's buffer for Python's select().
  await Promise.all(items.map(settle));
  checkOpen(items);
  const now = readyOnes();
  if (now.length > 0 || (timeout !== undefined && timeout !== null && timeout <= 0)) return now;

  return new Promise<W[]>((resolve, reject) => {
    let timer: Timer | undefined;
    const stops: Array<() => void> = [];
    const finish = (result: W[] | Error) => {
      clearTimeout(timer);
      for (const stop of stops) stop();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    let checking = false;
    const recheck = () => {
      // Watchers fire once per message; look once per burst.
      if (checking) return;
      checking = true;
      queueMicrotask(() => {
        checking = false;
        try {
          checkOpen(items);
        } catch (error) {
          return finish(error as Error);
        }
        const ready = readyOnes();
        if (ready.length > 0) finish(ready);
      });
    };
    try {
      for (const item of items) stops.push(watch(item, recheck));
    } catch (error) {
      return finish(error as Error);
    }
    if (timeout !== undefined && timeout !== null && Number.isFinite(timeout)) {
      timer = setTimeout(() => finish(readyOnes()), timeout * 1000);
    }
  });
}

function isProcess(item: unknown): item is WaitableProcess {
  const p = item as Partial<WaitableProcess> | null;
  return typeof p === "object" && p !== null && typeof p.pid === "number" && p.exited instanceof Promise;
}

function check(item: unknown): void {
  if (item instanceof Connection) {
    if (item.closed) throw new OSError("handle is closed");
    // As poll(): a write-only end can never become readable, so waiting on it is a mistake.
    if (!item.readable) throw new OSError("connection is write-only");
  } else if (item instanceof Listener) {
    if (item.closed) throw new OSError("listener is closed");
  } else if (!isProcess(item)) {
    throw new TypeError(`wait() takes Connections, Listeners and subprocesses, not ${describe(item)}`);
  }
}

/** Something was closed while we waited: as Python's select() on a closed fd, that is an error. */
function checkOpen(items: Waitable[]): void {
  for (const item of items) {
    if (item instanceof Connection && item.closed) throw new OSError("handle is closed");
    if (item instanceof Listener && item.closed) throw new OSError("listener is closed");
  }
}

function isReady(item: Waitable): boolean {
  if (item instanceof Connection || item instanceof Listener) return item.ready;
  return item.exitCode !== null || item.signalCode !== null;
}

function watch(item: Waitable, onChange: () => void): () => void {
  if (item instanceof Connection || item instanceof Listener) return item.watch(onChange);
  let active = true;
  item.exited.then(
    () => active && onChange(),
    () => active && onChange(),
  );
  return () => {
    active = false;
  };
}

function settle(item: Waitable): Promise<unknown> {
  if (item instanceof Connection || item instanceof Listener) return item.settleForWait();
  return new Promise((resolve) => setImmediate(resolve));
}

function describe(item: unknown): string {
  if (item instanceof Connection) return `Connection (fd ${item.closed ? "closed" : item.fileno()})`;
  if (item instanceof Listener) return `Listener (${JSON.stringify(item.address)})`;
  if (isProcess(item)) return `Subprocess (pid ${item.pid})`;
  if (item === null) return "null";
  return typeof item === "object" ? (item.constructor?.name ?? "object") : `${typeof item} ${String(item)}`;
}
