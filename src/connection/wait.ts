// wait(): Python's multiprocessing.connection.wait — which of these objects can be used
// without waiting? Connections (a message or EOF can be received), Listeners (a connection can
// be accepted) and Bun subprocesses (the process exited). Each object is seen through its
// Readiness (./waitable.ts). Nothing here polls: each object says when it changes, and the
// check runs then.
import type { Connection } from "./connection.ts";
import type { Listener } from "../endpoints/listener.ts";
import { waitable, type HasReadiness, type Readiness } from "./waitable.ts";

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
  const readiness = new Map<W, Readiness>();
  for (const item of items) {
    const r = readinessOf(item);
    r.check();
    // Python raises KeyError here; an argument mistake is a TypeError in mpconn.
    if (readiness.has(item)) throw new TypeError(`${r.describe()} is already registered`);
    readiness.set(item, r);
  }
  const all = [...readiness.values()];
  const readyOnes = () => items.filter((item) => readiness.get(item)!.ready());
  // Something closed while we waited: as Python's select() on a closed fd, that is an error.
  const checkAll = () => {
    for (const r of all) r.check();
  };

  // First let the event loop deliver what is already on its way, so that "sent, then waited"
  // finds the message, as it would in the kernel's buffer for Python's select().
  await Promise.all(all.map((r) => r.settle()));
  checkAll();
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
          checkAll();
        } catch (error) {
          return finish(error as Error);
        }
        const ready = readyOnes();
        if (ready.length > 0) finish(ready);
      });
    };
    try {
      for (const r of all) stops.push(r.watch(recheck));
    } catch (error) {
      return finish(error as Error);
    }
    if (timeout !== undefined && timeout !== null && Number.isFinite(timeout)) {
      timer = setTimeout(() => finish(readyOnes()), timeout * 1000);
    }
  });
}

function readinessOf(item: unknown): Readiness {
  const has = item as Partial<HasReadiness> | null;
  if (typeof has === "object" && has !== null && typeof has[waitable] === "function") return has[waitable]();
  if (isProcess(item)) return processReadiness(item);
  throw new TypeError(`wait() takes Connections, Listeners and subprocesses, not ${describe(item)}`);
}

function isProcess(item: unknown): item is WaitableProcess {
  const p = item as Partial<WaitableProcess> | null;
  return typeof p === "object" && p !== null && typeof p.pid === "number" && p.exited instanceof Promise;
}

/** A subprocess is ready once it exited; it is never closed. */
function processReadiness(p: WaitableProcess): Readiness {
  return {
    check() {},
    ready: () => p.exitCode !== null || p.signalCode !== null,
    watch(onChange) {
      let active = true;
      p.exited.then(
        () => active && onChange(),
        () => active && onChange(),
      );
      return () => {
        active = false;
      };
    },
    settle: () => new Promise((resolve) => setImmediate(resolve)),
    describe: () => `Subprocess (pid ${p.pid})`,
  };
}

function describe(item: unknown): string {
  if (item === null) return "null";
  return typeof item === "object" ? (item.constructor?.name ?? "object") : `${typeof item} ${String(item)}`;
}
