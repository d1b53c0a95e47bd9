# CPython's multiprocessing.connection: Pipe() + Process (fork), send_bytes/recv_bytes for
# the bytes workloads and send/recv (pickle) for the objects. The protocol is that of
# common.ts: a `@@result` line from the parent, an `@@child` line from the child, on stdout.
# Workload "burst" is "stream" here (send_bytes blocks; Python has no un-awaited send);
# "into": the child receives with recv_bytes_into into one reused bytearray.
# Variant "shm": multiprocessing.shared_memory as the shared-memory anchor: two slots of
# `size` bytes; the parent copies a message into a free slot and sends its number on the
# Pipe, the child copies it out (bytes(), or into one reused bytearray) and sends it back.
import json
import os
import re
import sys
import time
from multiprocessing import get_context


def status(field):
    try:
        with open("/proc/self/status") as f:
            m = re.search(r"^%s:\s+(\d+)" % field, f.read(), re.M)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


class Meter:
    def __init__(self):
        self.peak_before = 0
        self.base = 0
        self.marked = False

    def mark(self):
        self.peak_before = max(self.peak_before, status("VmHWM"))
        self.base = status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        self.marked = True

    def read(self):
        hwm = status("VmHWM")
        if not self.marked:
            self.base = status("VmRSS")
        return {"peakKiB": max(self.peak_before, hwm), "baseKiB": self.base, "growthKiB": max(0, hwm - self.base)}


def emit(tag, value):
    os.write(1, ("%s %s\n" % (tag, json.dumps(value))).encode())


def phases(spec):
    if spec["workload"] == "rss":
        return [spec["warmup"], spec["count"]]
    return [spec["warmup"]] + [spec["count"]] * spec["reps"]


def payload(size):
    # Every byte written: untouched zero pages would make large copies unrealistically cheap.
    block = bytes((i * 7 + 1) & 0xFF for i in range(4096))
    return (block * (size // 4096 + 1))[:size]


def item(i):
    return {"id": i, "name": "item-%d" % i, "values": [i * 0.5 + k / 3 + 0.125 for k in range(10)]}


def latency(samples):
    s = sorted(samples)
    at = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1e6
    return {"median": at(0.5), "p99": at(0.99)}


def child(conn, parents_end, spec):
    parents_end.close()  # forked with both ends open: keep only ours, so the parent's close is our EOF
    meter = Meter()
    received = 0
    w = spec["workload"]
    try:
        if w == "pingpong":
            while True:
                conn.send_bytes(conn.recv_bytes())
                received += 1
        elif w == "objpingpong":
            while True:
                conn.send(conn.recv())
                received += 1
        elif w == "objstream":
            for p, n in enumerate(phases(spec)):
                for _ in range(n):
                    obj = conn.recv()
                    if len(obj["values"]) != 10:
                        raise ValueError("bad object")
                    received += 1
                if p == 0:
                    meter.mark()
                conn.send(received)
            conn.recv()
        else:
            size = spec["size"]
            into = bytearray(size) if w == "into" else None
            for p, n in enumerate(phases(spec)):
                for _ in range(n):
                    got = conn.recv_bytes_into(into) if into is not None else len(conn.recv_bytes())
                    if got != size:
                        raise ValueError("bad length")
                    received += 1
                if p == 0:
                    meter.mark()
                conn.send_bytes(b"\x01")
            conn.recv_bytes()
    except EOFError:
        pass
    emit("@@child", {"mem": meter.read(), "received": received})


def shm_child(conn, parents_end, shm, spec):
    parents_end.close()
    meter = Meter()
    size = spec["size"]
    into = memoryview(bytearray(size)) if spec["workload"] == "into" else None
    received = 0
    try:
        for p, n in enumerate(phases(spec)):
            for _ in range(n):
                slot = conn.recv_bytes()[0]
                start = slot * size
                if into is not None:
                    into[:] = shm.buf[start : start + size]
                elif len(bytes(shm.buf[start : start + size])) != size:
                    raise ValueError("bad length")
                received += 1
                conn.send_bytes(bytes([slot]))
            if p == 0:
                meter.mark()
            conn.send_bytes(b"\xff")
        conn.recv_bytes()
    except EOFError:
        pass
    shm.close()
    emit("@@child", {"mem": meter.read(), "received": received})


def shm_parent(spec):
    from multiprocessing import shared_memory

    ctx = get_context("fork")
    size = spec["size"]
    shm = shared_memory.SharedMemory(create=True, size=2 * size)
    conn, theirs = ctx.Pipe()
    proc = ctx.Process(target=shm_child, args=(theirs, conn, shm, spec))
    proc.start()
    theirs.close()
    meter = Meter()
    msg = payload(size)
    free = [0, 1]
    reps = []
    now = time.perf_counter
    for p, n in enumerate(phases(spec)):
        if p == 1:
            meter.mark()
        t0 = now()
        for _ in range(n):
            while not free:
                free.append(conn.recv_bytes()[0])
            slot = free.pop()
            shm.buf[slot * size : (slot + 1) * size] = msg
            conn.send_bytes(bytes([slot]))
        while True:  # the phase's acknowledgement, after the slots come back
            got = conn.recv_bytes()[0]
            if got == 0xFF:
                break
            free.append(got)
        if p > 0:
            reps.append(now() - t0)
    conn.close()
    proc.join()
    shm.close()
    shm.unlink()
    if proc.exitcode != 0:
        raise SystemExit("python child exited with %s" % proc.exitcode)
    emit("@@result", {"reps": reps, "mem": meter.read(), "python": sys.version.split()[0]})


def parent(spec):
    if spec.get("variant") == "shm":
        return shm_parent(spec)
    ctx = get_context("fork")
    conn, theirs = ctx.Pipe()
    proc = ctx.Process(target=child, args=(theirs, conn, spec))
    proc.start()
    theirs.close()
    meter = Meter()
    reps = []
    w = spec["workload"]
    now = time.perf_counter
    if w in ("pingpong", "objpingpong"):
        msg = payload(spec["size"])
        obj = item(0)
        for p, n in enumerate([spec["warmup"]] + [spec["count"]] * spec["reps"]):
            if p == 1:
                meter.mark()
            samples = [0.0] * n
            for i in range(n):
                t0 = now()
                if w == "objpingpong":
                    obj["id"] = i
                    conn.send(obj)
                    conn.recv()
                else:
                    conn.send_bytes(msg)
                    conn.recv_bytes()
                samples[i] = now() - t0
            if p > 0:
                reps.append(latency(samples))
    else:
        objects = w == "objstream"
        msg = payload(spec["size"])
        obj = item(0)
        for p, n in enumerate(phases(spec)):
            if p == 1:
                meter.mark()
            t0 = now()
            if objects:
                send = conn.send
                for i in range(n):
                    obj["id"] = i
                    send(obj)
                conn.recv()
            else:
                send = conn.send_bytes
                for _ in range(n):
                    send(msg)
                conn.recv_bytes()
            if p > 0:
                reps.append(now() - t0)
    conn.close()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit("python child exited with %s" % proc.exitcode)
    emit("@@result", {"reps": reps, "mem": meter.read(), "python": sys.version.split()[0]})


if __name__ == "__main__":
    if sys.argv[1] != "parent":
        raise SystemExit("usage: python.py parent '<spec json>' (the child is forked)")
    parent(json.loads(sys.argv[2]))
