"""A Python server for a Bun client: see client.ts.

    python3 examples/python/server.py [--once] [ADDRESS]        (default 127.0.0.1:6000)

A plain multiprocessing.connection.Listener with an authkey (env MPCONN_AUTHKEY, default
"mpconn-example"). ADDRESS is host:port (port 0 picks a free one) or a unix socket path. It
serves one client at a time: each request is a dict, each reply a dict. Ctrl-C stops it;
with --once it exits after its first client.
"""
import math
import os
import statistics
import sys
from multiprocessing import AuthenticationError
from multiprocessing.connection import Listener


def parse_address(text):
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and "/" not in text:
        return (host, int(port))
    return text


def answer(request):
    op = request["op"]
    if op == "stats":
        values = request["values"]
        return {"mean": statistics.mean(values), "stdev": statistics.pstdev(values), "sorted": tuple(sorted(values))}
    if op == "power":
        return {"value": request["base"] ** request["exp"]}  # Python ints have no size limit
    if op == "split":
        # a dict with int keys arrives as a Map; bytes as a Uint8Array
        text = request["text"]
        return {"lines": {i: line for i, line in enumerate(text.splitlines(), 1)}, "utf8": text.encode()}
    if op == "common":
        return {"common": set(request["a"]) & set(request["b"])}
    raise ValueError("unknown op %r" % (op,))


def serve(conn):
    with conn:
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the client has gone
                return
            try:
                conn.send({"ok": True, **answer(request)})
            except Exception as e:
                conn.send({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})


def main():
    args = sys.argv[1:]
    once = "--once" in args
    args = [a for a in args if a != "--once"]
    address = parse_address(args[0] if args else "127.0.0.1:6000")
    authkey = os.environ.get("MPCONN_AUTHKEY", "mpconn-example").encode()
    with Listener(address, authkey=authkey) as listener:
        where = listener.address
        print("listening on %s" % ("%s:%d" % where if isinstance(where, tuple) else where), flush=True)
        while True:
            try:
                conn = listener.accept()
            except AuthenticationError as e:
                print("refused a client: %s" % e, flush=True)
                continue
            print("client connected", flush=True)
            serve(conn)
            print("client left", flush=True)
            if once:
                return


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
