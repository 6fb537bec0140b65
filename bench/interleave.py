#!/usr/bin/env python3
"""Times whole commands run alternately (A B A B ...), so that a load that comes and goes on
the machine hits every command alike; prints one JSON object per command with the median,
mean, min and the per-run wall times in milliseconds.

    bench/interleave.py --runs 20 --warmup 2 -n NAME 'COMMAND' -n NAME 'COMMAND' ...

Commands run through the shell with stdout to /dev/null; a non-zero exit is an error."""
import argparse
import json
import statistics
import subprocess
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("-n", "--name", action="append", required=True)
    parser.add_argument("commands", nargs="+")
    args = parser.parse_intermixed_args()
    if len(args.name) != len(args.commands):
        parser.error("give one -n NAME per command")
    times = {name: [] for name in args.name}
    for i in range(args.warmup + args.runs):
        # Alternate the order too, so neither command always runs right after the other.
        pairs = list(zip(args.name, args.commands))
        if i % 2:
            pairs.reverse()
        for name, command in pairs:
            start = time.perf_counter()
            done = subprocess.run(command, shell=True, stdout=subprocess.DEVNULL)
            elapsed = (time.perf_counter() - start) * 1000
            if done.returncode != 0:
                sys.exit(f"interleave: '{name}' exited with {done.returncode}")
            if i >= args.warmup:
                times[name].append(elapsed)
    for name in args.name:
        t = times[name]
        print(json.dumps({"name": name, "median_ms": statistics.median(t),
                          "mean_ms": statistics.mean(t), "min_ms": min(t), "runs_ms": t}))


if __name__ == "__main__":
    main()
