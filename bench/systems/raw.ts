// The raw Bun baseline: Bun.spawn's "socket-fd" slot + Bun.connect({ fd }), CPython's 4-byte
// big-endian framing written by hand, frames coalesced into one 256 KiB buffer per write.
// No promises per message, no serializer, no wasm: the best a Bun library can hope for.
// Workload "burst": a phase's frames all handed over without waiting for drain; "into": the
// child assembles large bodies in one reused buffer (what recvBytesInto would give).
// Bun's write() returns what the kernel took and drops the rest, so the unsent tail is kept
// and written on `drain` (which also fires once, spuriously, right after open).
import type { Socket } from "bun";
import {
  MemoryMeter,
  emitChild,
  emitResult,
  payload,
  phases,
  readArgs,
  roundTrips,
  timeRoundTrips,
  timeStream,
  type Rep,
  type Spec,
} from "./common.ts";

const OUT_SIZE = 256 * 1024;

class RawChannel {
  private socket!: Socket<RawChannel>;
  private out = new Uint8Array(OUT_SIZE);
  private outLen = 0;
  /** Bytes the kernel refused, oldest first; written on drain. */
  private queue: Uint8Array[] = [];
  private drainWaiters: Array<() => void> = [];
  // Receiving: frames inside one chunk are views of it; a frame spanning chunks is assembled.
  private header = new Uint8Array(4);
  private headerFilled = 0;
  private body: Uint8Array | null = null;
  private bodyFilled = 0;
  private inbox: Uint8Array[] = [];
  /** A body buffer to assemble the next large message in ("into"), or null for a new one each time. */
  reuse: Uint8Array | null = null;
  private waiter: ((body: Uint8Array) => void) | null = null;
  /** Called for every received message (default: queue it for recv()). */
  onMessage: (body: Uint8Array) => void = (body) => {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(body);
    } else this.inbox.push(body);
  };
  onEnd: () => void = () => {};

  static async open(fd: number): Promise<RawChannel> {
    const ch = new RawChannel();
    ch.socket = await Bun.connect<RawChannel>({
      fd,
      data: ch,
      socket: {
        binaryType: "uint8array",
        data: (s: Socket<RawChannel>, chunk: Uint8Array) => s.data.receive(chunk),
        drain: (s: Socket<RawChannel>) => s.data.drain(),
        end: (s: Socket<RawChannel>) => s.data.onEnd(),
        close: () => {},
      },
    } as unknown as Parameters<typeof Bun.connect<RawChannel>>[0]);
    return ch;
  }

  /** Append one frame; large bodies are written directly. Check `blocked` afterwards. */
  send(body: Uint8Array): void {
    const size = body.byteLength;
    if (this.outLen + 4 + size > OUT_SIZE) this.flush();
    if (4 + size > OUT_SIZE) {
      const header = new Uint8Array(4);
      new DataView(header.buffer).setUint32(0, size);
      this.write(header, 0, 4);
      this.write(body, 0, size);
      return;
    }
    const out = this.out;
    let at = this.outLen;
    out[at] = size >>> 24;
    out[at + 1] = size >>> 16;
    out[at + 2] = size >>> 8;
    out[at + 3] = size;
    out.set(body, at + 4);
    this.outLen = at + 4 + size;
  }

  flush(): void {
    if (this.outLen === 0) return;
    const n = this.outLen;
    this.outLen = 0;
    this.write(this.out, 0, n, true);
  }

  /** Whether the kernel refused bytes that now wait for drain. */
  get blocked(): boolean {
    return this.queue.length > 0;
  }

  drained(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  recv(): Promise<Uint8Array> {
    const next = this.inbox.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  end(): void {
    this.socket.end();
  }

  private write(bytes: Uint8Array, offset: number, length: number, reused = false): void {
    let taken = 0;
    if (this.queue.length === 0) {
      taken = this.socket.write(bytes, offset, length);
      if (taken < 0) throw new Error("raw: socket closed");
      if (taken === length) return;
    }
    const rest = bytes.subarray(offset + taken, offset + length);
    // The batch buffer is reused: keep a copy of its tail. Large bodies are the caller's and are kept as they are.
    this.queue.push(reused ? rest.slice() : rest);
  }

  private drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const taken = this.socket.write(head, 0, head.byteLength);
      if (taken < 0) throw new Error("raw: socket closed");
      if (taken < head.byteLength) {
        this.queue[0] = head.subarray(taken);
        return;
      }
      this.queue.shift();
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private receive(chunk: Uint8Array): void {
    const end = chunk.byteLength;
    let at = 0;
    while (at < end) {
      if (this.body) {
        const take = Math.min(end - at, this.body.byteLength - this.bodyFilled);
        this.body.set(chunk.subarray(at, at + take), this.bodyFilled);
        this.bodyFilled += take;
        at += take;
        if (this.bodyFilled === this.body.byteLength) {
          const body = this.body;
          this.body = null;
          this.onMessage(body);
        }
        continue;
      }
      let size: number;
      if (this.headerFilled === 0 && end - at >= 4) {
        size = ((chunk[at]! << 24) | (chunk[at + 1]! << 16) | (chunk[at + 2]! << 8) | chunk[at + 3]!) >>> 0;
        at += 4;
        if (end - at >= size) {
          this.onMessage(chunk.subarray(at, at + size));
          at += size;
          continue;
        }
      } else {
        while (this.headerFilled < 4 && at < end) this.header[this.headerFilled++] = chunk[at++]!;
        if (this.headerFilled < 4) return;
        this.headerFilled = 0;
        const h = this.header;
        size = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
      }
      this.body = this.reuse && this.reuse.byteLength === size ? this.reuse : new Uint8Array(size);
      this.bodyFilled = 0;
      if (size === 0) {
        this.body = null;
        this.onMessage(new Uint8Array(0));
      }
    }
  }
}

const { role, spec } = readArgs();
const meter = new MemoryMeter();
const ACK = new Uint8Array([1]);

if (role === "parent") await parent(spec);
else await child(spec);

async function parent(spec: Spec): Promise<void> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "child", JSON.stringify(spec)], {
    stdio: ["inherit", "inherit", "inherit", "socket-fd"],
  });
  const ch = await RawChannel.open(proc.stdio[3] as unknown as number);
  const msg = payload(spec.size);
  let reps: Rep[];
  if (spec.workload === "pingpong") {
    reps = await timeRoundTrips(spec, meter, () => {
      ch.send(msg);
      ch.flush();
      return ch.recv();
    });
  } else if (spec.workload === "burst") {
    reps = await timeStream(spec, meter, async (n) => {
      for (let i = 0; i < n; i++) ch.send(msg);
      ch.flush();
      await ch.drained();
      await ch.recv();
    });
  } else if (spec.workload === "stream" || spec.workload === "rss" || spec.workload === "into") {
    reps = await timeStream(spec, meter, async (n) => {
      for (let i = 0; i < n; i++) {
        ch.send(msg);
        if (ch.blocked) await ch.drained();
      }
      ch.flush();
      await ch.recv();
    });
  } else throw new Error(`raw: no ${spec.workload} workload (bytes only)`);
  await ch.drained();
  ch.end();
  const code = await proc.exited;
  if (code !== 0) throw new Error(`raw child exited with ${code}`);
  emitResult(reps, meter.read());
}

async function child(spec: Spec): Promise<void> {
  const ch = await RawChannel.open(3);
  let received = 0;
  const done = new Promise<void>((resolve) => (ch.onEnd = resolve));
  if (spec.workload === "pingpong") {
    const total = roundTrips(spec);
    ch.onMessage = (body) => {
      ch.send(body);
      ch.flush();
      if (++received > total) throw new Error("raw child: too many messages");
    };
  } else {
    if (spec.workload === "into") ch.reuse = new Uint8Array(spec.size);
    const counts = phases(spec);
    let phase = 0;
    let i = 0;
    ch.onMessage = (body) => {
      if (body.byteLength !== spec.size) throw new Error(`raw child: got ${body.byteLength} B, expected ${spec.size}`);
      received++;
      if (++i < counts[phase]!) return;
      if (phase === 0) meter.mark();
      ch.send(ACK);
      ch.flush();
      i = 0;
      phase++;
    };
  }
  await done;
  emitChild(meter.read(), received);
  process.exit(0);
}
