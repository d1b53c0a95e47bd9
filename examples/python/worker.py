"""A Python worker for a Bun parent: see parent.ts, which starts it.

    MPCONN_AUTHKEY=secret python3 worker.py /path/to/socket      (or host:port)

It connects to the parent's mpconn Listener with multiprocessing.connection.Client, receives
tasks (dicts) until it gets None, and sends one result dict per task. Nothing here knows about
mpconn: this is the standard library talking to a Bun process that uses serializer "pickle".
"""
import hashlib
import math
import os
import sys
from multiprocessing.connection import Client


def parse_address(text):
    """'host:port' is TCP; anything else is a unix socket path."""
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and "/" not in text:
        return (host, int(port))
    return text


def handle(task):
    op = task["op"]
    if op == "square":
        return task["x"] ** 2
    if op == "factorial":
        return math.factorial(task["n"])  # a big int: a bigint in JS
    if op == "sha256":
        return hashlib.sha256(task["data"]).digest()  # bytes: a Uint8Array in JS
    if op == "stats":
        values = task["values"]
        return {"n": len(values), "mean": sum(values) / len(values), "range": (min(values), max(values))}
    if op == "unique":
        return frozenset(task["items"])  # a Set in JS
    raise ValueError("unknown op %r" % (op,))


def main():
    address = parse_address(sys.argv[1])
    authkey = os.environ["MPCONN_AUTHKEY"].encode()
    with Client(address, authkey=authkey) as conn:
        while True:
            task = conn.recv()
            if task is None:  # the parent's "no more work"
                break
            try:
                conn.send({"id": task["id"], "ok": True, "result": handle(task)})
            except Exception as e:  # report, keep serving
                conn.send({"id": task["id"], "ok": False, "error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
