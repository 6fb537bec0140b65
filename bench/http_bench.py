#!/usr/bin/env python3
"""HTTP benchmarks of Bridge (issue 4), printed as Markdown for bench/results/latest.md.

    bench/http_bench.py --bridge BIN --data DIR [--latency BIN] [--peer DIR] [--runs N]

1. Throughput: `select * from trips` downloaded as format=arrow, json and csv from a live
   `bridge serve`, and as JSON from the Node.js peer (bench/peers/node-json), side by side in
   one run: rows/s, MB/s, and the server's CPU seconds (utime + stime of its pid from
   /proc/PID/stat, before and after each download). Downloads go to /dev/null through curl
   (best of --runs); an untimed second download of each is checked for the right row count
   (arrow: decoded by apache-arrow from tests/interop; json: row objects; csv: lines).
2. Latency: bench's http_latency program (keep-alive HTTP vs in-process engine, interleaved).
3. wrk: a small query at 1, 16, 64 and 256 connections: requests/s, p99, errors.
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")
THROUGHPUT_SQL = "select * from trips"
LATENCY_SQL = "select payment, count(*), avg(fare) from trips group by payment"
SMALL_SQL = "select * from trips limit 10"
TINY_SQL = "select 42 as answer"
QUEUE = 512


def log(*args):
    print("http_bench:", *args, file=sys.stderr, flush=True)


class Server:
    """A child process that prints its URL; stopped with SIGTERM."""

    def __init__(self, argv, pattern, name, timeout=120):
        self.name = name
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        seen = b""
        self.url = None
        fd = self.proc.stdout.fileno()  # raw reads: a buffered reader would hide lines from select
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                seen += chunk
                m = re.search(pattern, seen.decode(errors="replace"))
                if m:
                    self.url = m.group(1)
                    break
            elif self.proc.poll() is not None:
                break
        if self.url is None:
            self.stop()
            raise SystemExit(f"http_bench: {name} did not start: {seen.decode(errors='replace')}")
        # Keep draining the log so the child never blocks on a full pipe.
        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stdout, stdout=subprocess.DEVNULL)

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def query_url(base, sql, fmt=None, cache=None):
    q = {"sql": sql}
    if fmt:
        q["format"] = fmt
    if cache:
        q["cache"] = cache
    return f"{base}/query?{urllib.parse.urlencode(q)}"


def timed_download(server, url):
    """Downloads `url` to /dev/null; returns (seconds, bytes, server CPU seconds)."""
    cpu0 = server.cpu_seconds()
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                          url], capture_output=True, text=True, check=True).stdout.split()
    cpu1 = server.cpu_seconds()
    if out[0] != "200":
        raise SystemExit(f"http_bench: GET {url} answered {out[0]}")
    return float(out[2]), int(out[1]), cpu1 - cpu0


COUNT_JSON = r"""
import sys
marker, tail, n = b'{"id":', b"", 0
while True:
    block = sys.stdin.buffer.read(1 << 20)
    if not block:
        break
    data = tail + block
    n += data.count(marker)
    tail = data[-(len(marker) - 1):]
    # a marker split over the boundary is counted once: the tail is shorter than the marker
print(n)
"""

COUNT_LINES = r"""
import sys
n = 0
while True:
    block = sys.stdin.buffer.read(1 << 20)
    if not block:
        break
    n += block.count(b"\n")
print(n)
"""

COUNT_ARROW = r"""
import { RecordBatchReader } from 'apache-arrow';
let rows = 0;
for await (const batch of await RecordBatchReader.from(process.stdin)) rows += batch.numRows;
console.log(rows);
"""


def counted_rows(url, kind):
    """Downloads `url` once more (untimed) and counts its rows."""
    if kind == "arrow":
        counter = ["node", "--input-type=module", "-e", COUNT_ARROW]
        cwd = os.path.join(ROOT, "tests", "interop")
    else:
        counter = [sys.executable, "-c", COUNT_JSON if kind == "json" else COUNT_LINES]
        cwd = None
    curl = subprocess.Popen(["curl", "-sS", "--fail", url], stdout=subprocess.PIPE)
    out = subprocess.run(counter, stdin=curl.stdout, capture_output=True, text=True, cwd=cwd)
    curl.stdout.close()
    if curl.wait() != 0 or out.returncode != 0:
        raise SystemExit(f"http_bench: counting {kind} rows of {url} failed: {out.stderr}")
    n = int(out.stdout.strip())
    return n - 1 if kind == "csv" else n  # header line


def throughput(bridge, peer, rows_expected, runs):
    # The live query (cache=off), then the same result from the result cache: the untimed
    # row count below is the miss that writes the entry, the timed runs are hits (sendfile).
    cases = [("Bridge format=arrow", bridge, query_url(bridge.url, THROUGHPUT_SQL, "arrow", "off"), "arrow"),
             ("Bridge format=json", bridge, query_url(bridge.url, THROUGHPUT_SQL, "json"), "json"),
             ("Bridge format=csv", bridge, query_url(bridge.url, THROUGHPUT_SQL, "csv"), "csv"),
             ("Bridge format=arrow from the result cache (sendfile)", bridge,
              query_url(bridge.url, THROUGHPUT_SQL, "arrow"), "arrow")]
    if peer is not None:
        cases.append(("Node.js peer JSON (bench/peers/node-json)", peer,
                      query_url(peer.url, THROUGHPUT_SQL), "json"))
    results = []
    for label, server, url, kind in cases:
        rows = counted_rows(url, kind)
        if rows != rows_expected:
            raise SystemExit(f"http_bench: {label} returned {rows} rows, expected {rows_expected}")
        if "result cache" in label:
            time.sleep(5)  # the miss's entry is committed (fsync, rename) after its response
        n = runs if server is bridge else 1
        best = None
        for _ in range(n):
            seconds, size, cpu = timed_download(server, url)
            if best is None or seconds < best[0]:
                best = (seconds, size, cpu)
        log(f"{label}: {best[0]:.3f} s, {best[1] / 1e6:.1f} MB, server CPU {best[2]:.2f} s")
        results.append((label, *best))
    return results


def latency(latency_bin, data, base, reps, sql=LATENCY_SQL):
    out = subprocess.run([latency_bin, "--data", data, "--url", base, "--sql", sql,
                          "--reps", str(reps), "--format", "json", "--format", "arrow"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"http_bench: http_latency failed: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def wrk(base, connections, seconds):
    url = query_url(base, SMALL_SQL, "json")
    threads = min(2, connections)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                          "--timeout", "10s", "--latency", url], capture_output=True, text=True)
    text = out.stdout
    if out.returncode != 0:
        raise SystemExit(f"http_bench: wrk failed: {out.stderr}{text}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(x) for x in m.groups())
    total = int(re.search(r"(\d+) requests in", text).group(1))
    return rps, float(p99.group(1)) * scale, errors, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--latency")
    ap.add_argument("--peer", default=os.path.join(ROOT, "bench", "peers", "node-json"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--latency-reps", type=int, default=300)
    ap.add_argument("--wrk-seconds", type=int, default=5)
    args = ap.parse_args()

    # The queue must hold wrk's 256 connections (the default bound answers 429 beyond
    # max_concurrent_queries + max_queued_queries).
    cache_dir = tempfile.mkdtemp(prefix="bridge-bench-cache-")
    bridge = Server([args.bridge, "serve", "--data", args.data, "--http-port", "0",
                     "--cache-dir", cache_dir,
                     "--max-queued-queries", str(QUEUE), "--log-level", "info"], r"HTTP listening on (https?://[\d.]+:\d+)", "bridge")
    peer = None
    try:
        if args.peer:
            peer = Server(["node", os.path.join(args.peer, "server.mjs"), args.data, "0"],
                          r"listening on (http://[\d.]+:\d+)", "node-json peer")
        rows_expected = int(subprocess.run(
            ["curl", "-sS", "--fail", query_url(bridge.url, "select count(*) AS n from trips", "csv")],
            capture_output=True, text=True, check=True).stdout.split()[1])
        log(f"bridge at {bridge.url}, peer at {peer.url if peer else '-'}, {rows_expected} rows")
        tp = throughput(bridge, peer, rows_expected, args.runs)
        if peer is not None:
            peer.stop()
            peer = None
        lat = latency(args.latency, args.data, bridge.url, args.latency_reps) if args.latency else []
        # The fixed cost of one request, where the query itself costs next to nothing.
        tiny = (latency(args.latency, args.data, bridge.url, args.latency_reps, TINY_SQL)
                if args.latency else [])
        load = [(c, *wrk(bridge.url, c, args.wrk_seconds)) for c in (1, 16, 64, 256)]
        peak_rss = bridge.rss_mb()
    finally:
        if peer is not None:
            peer.stop()
        bridge.stop()
        shutil.rmtree(cache_dir, ignore_errors=True)

    day = time.strftime("%Y-%m-%d", time.gmtime())
    print(f"### HTTP: throughput of `{THROUGHPUT_SQL}` ({rows_expected:,} rows)")
    print()
    print(f"Whole download to /dev/null with curl over loopback, best of {args.runs} "
          f"(peer: one run, it is slow); server CPU = utime + stime of the server "
          f"process during the download. Row counts checked on a second download. "
          f"{os.cpu_count()} cores, {day}. Reproduce: `make bench` (or `bench/http_bench.py`).")
    print()
    print("| what | seconds | rows/s | MB | MB/s | server CPU s | Arrow speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    arrow_s = tp[0][1]
    for label, seconds, size, cpu in tp:
        print(f"| {label} | {seconds:.3f} | {rows_expected / seconds / 1e6:.2f} M | {size / 1e6:.0f} "
              f"| {size / 1e6 / seconds:.0f} | {cpu:.2f} | {seconds / arrow_s:.1f}x |")
    print()
    by = {label: seconds for label, seconds, _, _ in tp}
    json_ratio = by["Bridge format=json"] / arrow_s
    line = f"Arrow vs Bridge's JSON: **{json_ratio:.1f}x** (bar: >= 15x)"
    peer_label = next((label for label in by if label.startswith("Node.js")), None)
    if peer_label:
        line += f"; Arrow vs the Node.js JSON peer: **{by[peer_label] / arrow_s:.1f}x** (bar: >= 30x)"
    cached_label = next((label for label in by if "result cache" in label), None)
    if cached_label:
        line += (f". From the result cache: **{by['Bridge format=json'] / by[cached_label]:.1f}x** "
                 f"Bridge's JSON" + (f", **{by[peer_label] / by[cached_label]:.1f}x** the peer"
                                     if peer_label else ""))
    print(line + ".")
    print()
    for sql, rows in ((LATENCY_SQL, lat), (TINY_SQL, tiny)):
        if not rows:
            continue
        base = next(x for x in rows if x["what"].startswith("in-process"))
        print(f"### HTTP: latency of `{sql}`")
        print()
        print(f"{rows[0]['reps']} repetitions each, interleaved (the in-process run first, then the "
              f"formats, which take turns going first); HTTP through one keep-alive connection of "
              f"libcurl, and one of a minimal raw-socket client (one write, reads the chunked body "
              f"to its trailer: what remains is the gateway's and the kernel's). "
              f"(`bench/http_latency.cc`). Gateway overhead (bar: < 0.5 ms at p50): the "
              f"difference of the p50s, and the median of the per-repetition differences (HTTP "
              f"minus in-process, back to back), which cancels most of a shared machine's noise; "
              f"and the gateway's own time: per request, HTTP time minus the time DuckDB took in the "
              f"server (its Server-Timing trailer), which leaves out the two engines' differences "
              f"(two processes, two DuckDB instances). The floor row is the same measure for a "
              f"server that does nothing: a thread that sleeps as long as the in-process query took, "
              f"then answers (its trailer gives the time it really slept): this machine's cost of "
              f"any request that makes a thread wait that long (loopback TCP, waking the server and "
              f"the client).")
        print()
        print("| what | p50 ms | p99 ms | mean ms | p50 - in-process p50, ms "
              "| median paired overhead, ms | server's engine p50, ms | median HTTP - server's engine, ms |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for x in rows:
            def ms(key):
                return "-" if x is base else f"{x[key] / 1000:.3f}"
            over = "-" if x is base else f"{(x['p50_us'] - base['p50_us']) / 1000:.3f}"
            print(f"| {x['what']} | {x['p50_us'] / 1000:.3f} | {x['p99_us'] / 1000:.3f} "
                  f"| {x['mean_us'] / 1000:.3f} | {over} | {ms('paired_overhead_p50_us')} "
                  f"| {ms('server_engine_p50_us')} | {ms('gateway_p50_us')} |")
        print()
    print(f"### HTTP: small-query load with wrk (`{SMALL_SQL}`, format=json)")
    print()
    print(f"`wrk -t min(2,c) -c c -d {args.wrk_seconds}s --timeout 10s --latency`; errors = "
          f"non-2xx responses + socket errors (connect, read, write, timeout). Server started with "
          f"`--max-queued-queries {QUEUE}` (the default, 1024, holds 256 connections too: 8 running "
          f"+ 1024 queued, then 429). Server peak RSS over the whole benchmark: {peak_rss:.0f} MB.")
    print()
    print("| connections | requests | requests/s | p99 ms | errors |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for c, rps, p99, errors, total in load:
        print(f"| {c} | {total} | {rps:,.0f} | {p99:.2f} | {errors} |")
    print()


if __name__ == "__main__":
    main()
