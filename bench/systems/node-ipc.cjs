// Node's child_process.fork IPC with serialization "advanced" (bytes travel as Uint8Array,
// objects by structured clone), run by `node`. The protocol is that of common.ts: a
// `@@result` line from the parent, an `@@child` line from the child, on stdout.
"use strict";
const { fork } = require("node:child_process");
const fs = require("node:fs");

const role = process.argv[2];
const spec = JSON.parse(process.argv[3] || "{}");

function status(field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(fs.readFileSync("/proc/self/status", "latin1"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
const meter = {
  peakBefore: 0,
  base: 0,
  marked: false,
  mark() {
    if (global.gc) global.gc();
    this.peakBefore = Math.max(this.peakBefore, status("VmHWM"));
    this.base = status("VmRSS");
    try {
      fs.writeFileSync("/proc/self/clear_refs", "5");
    } catch {}
    this.marked = true;
  },
  read() {
    const hwm = status("VmHWM") || process.resourceUsage().maxRSS;
    if (!this.marked) this.base = status("VmRSS");
    return { peakKiB: Math.max(this.peakBefore, hwm), baseKiB: this.base, growthKiB: Math.max(0, hwm - this.base) };
  },
};
const emit = (tag, value) => fs.writeSync(1, `${tag} ${JSON.stringify(value)}\n`);

const phases = () => (spec.workload === "rss" ? [spec.warmup, spec.count] : [spec.warmup, ...Array(spec.reps).fill(spec.count)]);
const payload = (size) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < Math.min(size, 4096); i++) bytes[i] = (i * 7 + 1) & 0xff;
  for (let filled = 4096; filled < size; filled *= 2) bytes.copyWithin(filled, 0, Math.min(filled, size - filled));
  return bytes;
};
const item = (id) => ({ id, name: `item-${id}`, values: Array.from({ length: 10 }, (_, k) => id * 0.5 + k / 3 + 0.125) });
const checkItem = (v) => {
  if (typeof v?.id !== "number" || v.values?.length !== 10) throw new Error(`node child: bad object ${JSON.stringify(v)}`);
};
const now = () => performance.now();
function latency(samples) {
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 1000;
  return { median: at(0.5), p99: at(0.99) };
}

async function parent() {
  const child = fork(__filename, ["child", JSON.stringify(spec)], { serialization: "advanced", stdio: "inherit" });
  const inbox = [];
  let waiter = null;
  child.on("message", (value) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(value);
    } else inbox.push(value);
  });
  const recv = () => (inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((resolve) => (waiter = resolve)));
  const objects = spec.workload === "objstream" || spec.workload === "objpingpong";
  const msg = objects ? null : payload(spec.size);
  const obj = item(0);
  const reps = [];
  if (spec.workload === "pingpong" || spec.workload === "objpingpong") {
    const counts = [spec.warmup, ...Array(spec.reps).fill(spec.count)];
    for (let p = 0; p < counts.length; p++) {
      if (p === 1) meter.mark();
      const samples = new Array(counts[p]);
      for (let i = 0; i < counts[p]; i++) {
        const t0 = now();
        if (objects) {
          obj.id = i;
          child.send(obj);
          checkItem(await recv());
        } else {
          child.send(msg);
          await recv();
        }
        samples[i] = now() - t0;
      }
      if (p > 0) reps.push(latency(samples));
    }
  } else {
    const counts = phases();
    for (let p = 0; p < counts.length; p++) {
      if (p === 1) meter.mark();
      const t0 = now();
      for (let i = 0; i < counts[p]; i++) {
        if (objects) {
          obj.id = i;
          child.send(obj);
        } else child.send(msg);
      }
      await recv();
      if (p > 0) reps.push((now() - t0) / 1000);
    }
  }
  child.disconnect();
  const code = await new Promise((resolve) => child.on("exit", resolve));
  if (code !== 0) throw new Error(`node child exited with ${code}`);
  emit("@@result", { reps, mem: meter.read() });
}

function child() {
  let received = 0;
  const objects = spec.workload === "objstream" || spec.workload === "objpingpong";
  if (spec.workload === "pingpong" || spec.workload === "objpingpong") {
    process.on("message", (value) => {
      if (objects) checkItem(value);
      process.send(value);
      received++;
    });
  } else {
    const counts = phases();
    let phase = 0;
    let i = 0;
    process.on("message", (value) => {
      if (objects) checkItem(value);
      else if (value.byteLength !== spec.size) throw new Error(`node child: got ${value.byteLength} B, expected ${spec.size}`);
      received++;
      if (++i < counts[phase]) return;
      if (phase === 0) meter.mark();
      process.send(received);
      i = 0;
      phase++;
    });
  }
  process.on("disconnect", () => {
    emit("@@child", { mem: meter.read(), received });
    process.exit(0);
  });
}

if (role === "parent") parent().catch((e) => {
  console.error(e);
  process.exit(1);
});
else child();
