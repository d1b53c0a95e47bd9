# CPython's multiprocessing.Pool in the pool benchmark (bench/pool.ts): the same three
# workloads as bench/systems/pool-tasks.ts, same processes and chunksize; prints one
# `@@pool {json}` line.
#   python3 bench/systems/pool.py '<spec json>'
import json
import os
import sys
import time
from multiprocessing import Pool
from array import array


def square(x):
    return x * x


def spin(ms):
    start = time.perf_counter()
    end = start + ms / 1000
    while time.perf_counter() < end:
        pass
    return (time.perf_counter() - start) * 1000


def length(values):
    return len(values)


def time_reps(spec, run, work=None):
    for _ in range(spec["warmup"]):
        run()
    times = []
    for _ in range(spec["reps"]):
        t0 = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - t0) * 1000)
        if work is not None:
            work.append(sum(result))
    return times


def main():
    spec = json.loads(sys.argv[-1])
    tiny, cpu, big = spec["tiny"], spec["cpu"], spec["big"]
    items = list(range(tiny["count"]))
    spins = [cpu["ms"]] * cpu["count"]
    values = array("d", range(big["bytes"] // 8))
    with Pool(spec["processes"]) as pool:
        def run_tiny():
            results = pool.map(square, items, chunksize=tiny["chunksize"])
            assert len(results) == len(items) and results[7] == 49

        def run_big():
            assert pool.apply(length, (values,)) == len(values)

        cpu_work = []
        out = {
            "tinyMs": time_reps(tiny, run_tiny),
            "cpuMs": time_reps(cpu, lambda: pool.map(spin, spins, chunksize=cpu["chunksize"]), cpu_work),
            "cpuWorkMs": cpu_work,
            "bigMs": time_reps(big, run_big),
        }
    os.write(1, ("@@pool " + json.dumps(out) + "\n").encode())


if __name__ == "__main__":
    main()
