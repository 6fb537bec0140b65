#!/usr/bin/env python3
"""Result-cache benchmarks of Bridge (issue 6), printed as Markdown for bench/results/latest.md.

    bench/cache_bench.py --bridge BIN --data DIR [--loopback-gbps G] [--runs N] [--reps N]

One `bridge serve` with a result cache, one run, everything side by side:

1. A ~1 GB result (`trips` twice over: a cross join with a two-row VALUES list, which the
   cache accepts) from the cache, downloaded with curl to /dev/null: seconds and Gbit/s
   beside the loopback TCP limit (--loopback-gbps, one iperf3 stream that bench/run measures
   in the same run), best of --runs.
2. Memory: the growth of the server's anonymous memory (RssAnon in /proc/PID/status, sampled
   every 2 ms) while it serves that cached result over HTTP (sendfile) and over Flight
   (DoGet: FlightData bodies are slices of the file's mapping; read by `bridge flight get`),
   against a heap-reading baseline in the same run: a minimal HTTP server that reads the
   same file into a buffer and writes it (what a naive file cache does).
3. The first response's cost of writing the entry: the same query with cache=refresh (runs
   and tees into a new entry: written through the entry's file and sent from it; checksums, fsync and
   rename after the response) against cache=off, --pairs interleaved pairs read by a raw
   socket reader, medians with a bootstrap 95% interval of the median pair ratio (this
   machine's run-to-run noise is ~10%), and the server's CPU seconds per response.
4. Latency of a small cached result over HTTP (keep-alive, one connection), p50 and p99 over
   --reps requests, beside the same query with cache=off.
"""
import argparse
import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_bench import Server, query_url, timed_download  # noqa: E402

BIG_SQL = "select t.*, k from trips t, (values (1), (2)) v(k)"
SMALL_SQL = "select payment, count(*) as n, avg(fare) as fare from trips group by payment"

# The heap-reading baseline: reads the whole file into a buffer, then writes it.
HEAP_SERVER = r"""
import http.server, sys
path = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(path, "rb") as f:
            data = f.read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
server.serve_forever()
"""


def log(*args):
    print("cache_bench:", *args, file=sys.stderr, flush=True)


def rss_anon_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def peak_growth_mb(pid, action):
    """Runs `action` while sampling RssAnon of `pid`; returns (peak - before) in MB and its
    result."""
    before = rss_anon_kb(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_kb(pid))
            time.sleep(0.002)

    t = threading.Thread(target=sample)
    t.start()
    try:
        result = action()
    finally:
        done.set()
        t.join()
    peak[0] = max(peak[0], rss_anon_kb(pid))
    return (peak[0] - before) / 1024, result


def download(url):
    out = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null", "-w",
                          "\n%{http_code} %{size_download} %{time_total}", url],
                         capture_output=True, text=True, check=True).stdout
    # The header block (text mode reads CRLF as LF), a trailer block (Server-Timing) after a
    # streamed body, then -w's line.
    head = out.partition("\n\n")[0]
    code, size, seconds = out.rstrip("\n").rpartition("\n")[2].split()
    if code != "200":
        raise SystemExit(f"cache_bench: GET {url} answered {code}")
    headers = {}
    for line in head.split("\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return float(seconds), int(size), headers


def raw_get(url):
    """GET `url` over one socket read into a reused 4 MiB buffer (curl reads 16 KiB at a time,
    which makes the client the bottleneck); returns (seconds, body bytes, headers)."""
    u = urllib.parse.urlsplit(url)
    target = u.path + ("?" + u.query if u.query else "")
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    with socket.create_connection((u.hostname, u.port)) as s:
        start = time.perf_counter()
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {u.hostname}\r\nConnection: close\r\n\r\n".encode())
        total = 0
        head = b""
        while True:
            n = s.recv_into(view)
            if n == 0:
                break
            if len(head) < 65536 and b"\r\n\r\n" not in head:
                head += bytes(view[:n])
            total += n
        seconds = time.perf_counter() - start
    head_text, _, _ = head.partition(b"\r\n\r\n")
    lines = head_text.decode(errors="replace").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        raise SystemExit(f"cache_bench: GET {url} answered {lines[0]}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return seconds, total - len(head_text) - 4, headers


def median_interval(values, rounds=2000):
    """A 95% bootstrap interval of the median of `values` (resampled with a fixed seed)."""
    rng = random.Random(1)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return medians[int(rounds * 0.025)], medians[int(rounds * 0.975) - 1]


def latencies(base, sql, reps, cache):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    path = "/query?" + urllib.parse.urlencode({"sql": sql, "format": "arrow", "cache": cache})
    out = []
    for i in range(reps + 10):
        start = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"cache_bench: small query answered {r.status}")
        if i >= 10:  # warm-up
            out.append((time.perf_counter() - start) * 1e6)
    conn.close()
    out.sort()
    return out[len(out) // 2], out[min(len(out) - 1, int(len(out) * 0.99))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--loopback-gbps", type=float, default=0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--pairs", type=int, default=15)
    args = ap.parse_args()

    cache_dir = tempfile.mkdtemp(prefix="bridge-cache-bench-")
    flight_port = free_port()
    bridge = Server([args.bridge, "serve", "--data", args.data, "--http-port", "0",
                     "--flight-port", str(flight_port), "--cache-dir", cache_dir, "--cache-bytes", str(4 << 30),
                     "--log-level", "info"],
                    r"HTTP listening on (https?://[\d.]+:\d+)", "bridge")
    heap = None
    try:
        base = bridge.url
        big = query_url(base, BIG_SQL, "arrow")
        # The miss writes the entry; its id names the file for the baseline.
        seconds, size, headers = download(big)
        if headers.get("x-bridge-cache") != "miss":
            raise SystemExit(f"cache_bench: the big result was not cacheable: {headers}")
        result_id = headers["x-bridge-result-id"]
        path = os.path.join(cache_dir, "results", result_id + ".arrow")
        wait_for(path)  # committed (fsync, rename) after the response
        log(f"miss: {size / 1e6:.0f} MB in {seconds:.2f} s, entry {path}")

        # 1. Throughput from the cache: a raw socket reader (as iperf3's), and curl.
        best = curl_best = None
        for _ in range(args.runs):
            s, n, h = raw_get(big)
            if h.get("x-bridge-cache") != "hit" or n != size:
                raise SystemExit(f"cache_bench: expected a whole hit: {n} bytes, {h}")
            best = s if best is None else min(best, s)
            s, _, _ = download(big)
            curl_best = s if curl_best is None else min(curl_best, s)
        gbps = size * 8 / best / 1e9
        curl_gbps = size * 8 / curl_best / 1e9
        log(f"hit: {best:.3f} s, {gbps:.2f} Gbit/s (curl {curl_best:.3f} s)")

        # 2. Memory: HTTP hit, Flight hit, heap-reading baseline.
        http_growth, _ = peak_growth_mb(bridge.proc.pid, lambda: download(big))
        def flight_get():
            subprocess.run([args.bridge, "flight", "--uri", f"grpc://127.0.0.1:{flight_port}",
                            "get", "--sql", BIG_SQL, "--format", "none"], check=True,
                           stdout=subprocess.DEVNULL)
        flight_get()  # the miss: Flight keeps its own entries (batches capped at 4 MiB)
        flight_growth, _ = peak_growth_mb(bridge.proc.pid, flight_get)
        heap = Server([sys.executable, "-c", HEAP_SERVER, path], r"listening on (http://[\d.]+:\d+)",
                      "heap baseline")
        heap_growth, heap_download = peak_growth_mb(heap.proc.pid, lambda: download(heap.url + "/"))
        heap.stop()
        heap = None
        log(f"RssAnon growth: http {http_growth:.1f} MB, flight {flight_growth} MB, "
            f"heap baseline {heap_growth:.1f} MB")

        # 3. The tee's cost to the first response: interleaved pairs, each refresh's commit
        # (fsync of the whole file) awaited before the next run, medians.
        tee = {"off": [], "refresh": []}
        tee_cpu = {"off": [], "refresh": []}
        for pair in range(args.pairs):
            # Each pair in the other order than the one before: neither goes first always.
            for mode in ("off", "refresh") if pair % 2 == 0 else ("refresh", "off"):
                cpu_before = bridge.cpu_seconds()
                s, n, h = raw_get(query_url(base, BIG_SQL, "arrow", mode))
                tee_cpu[mode].append(bridge.cpu_seconds() - cpu_before)
                # A live result is chunked: n counts the chunk framing too.
                if h.get("x-bridge-cache") != mode or n < size:
                    raise SystemExit(f"cache_bench: expected a whole {mode}: {n} bytes, {h}")
                tee[mode].append(s)
                if mode == "refresh":
                    wait_for(os.path.join(cache_dir, "results", h["x-bridge-result-id"] + ".arrow"))
                    time.sleep(0.5)  # the replaced entry's file is deleted
        off_med, refresh_med = statistics.median(tee["off"]), statistics.median(tee["refresh"])
        log(f"tee: off {tee['off']}, refresh {tee['refresh']}")

        # 4. Small cached result latency.
        latencies(base, SMALL_SQL, 1, "on")  # the miss
        time.sleep(1)  # its commit
        hit_p50, hit_p99 = latencies(base, SMALL_SQL, args.reps, "on")
        off_p50, off_p99 = latencies(base, SMALL_SQL, args.reps, "off")
    finally:
        if heap is not None:
            heap.stop()
        bridge.stop()
        subprocess.run(["rm", "-rf", cache_dir])

    def share(g):
        return f"{100 * g / args.loopback_gbps:.0f}%" if args.loopback_gbps > 0 else "-"

    pair_ratios = [r / o for r, o in zip(tee["refresh"], tee["off"])]
    ratio_low, ratio_high = median_interval(pair_ratios)
    mb = size / 1e6
    print(f"### Result cache: a {mb:.0f} MB result (`{BIG_SQL}`)")
    print()
    print(f"One `bridge serve`, one run, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d', time.gmtime())}. "
          f"Reproduce: `make bench` (or `bench/cache_bench.py --bridge build/release/bridge --data DIR`).")
    print()
    print("| what | seconds | Gbit/s | share of loopback |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| from the cache over HTTP (sendfile), raw socket reader, best of {args.runs} | {best:.3f} | {gbps:.2f} | {share(gbps)} |")
    print(f"| the same read by curl (16 KiB reads), best of {args.runs} | {curl_best:.3f} | {curl_gbps:.2f} | {share(curl_gbps)} |")
    print(f"| the live query, cache=off, raw socket reader, median of {args.pairs} | {off_med:.3f} | "
          f"{size * 8 / off_med / 1e9:.2f} | {share(size * 8 / off_med / 1e9)} |")
    print(f"| the live query writing the entry, cache=refresh (tee; fsync and rename after the response), "
          f"median of {args.pairs} | {refresh_med:.3f} | {size * 8 / refresh_med / 1e9:.2f} | "
          f"{share(size * 8 / refresh_med / 1e9)} |")
    if args.loopback_gbps > 0:
        print(f"| loopback TCP limit, one iperf3 stream | - | {args.loopback_gbps:.2f} | 100% |")
    print()
    print(f"First response with the tee / without (medians of {args.pairs} interleaved pairs): "
          f"**{refresh_med / off_med:.3f}x** (median of the pairs' ratios: "
          f"{statistics.median(pair_ratios):.3f}x, 95% bootstrap interval "
          f"{ratio_low:.3f}-{ratio_high:.3f}x; "
          f"fastest of each: {min(tee['refresh']) / min(tee['off']):.3f}x). "
          f"Server CPU per response, medians: {statistics.median(tee_cpu['off']):.2f} s without, "
          f"{statistics.median(tee_cpu['refresh']):.2f} s with the tee (written through: each step goes "
          f"to the entry's file, then to the socket by sendfile; the checksums are taken at commit, after the response; the CPU "
          f"includes them).")
    print()
    print("| server memory while serving the cached result | RssAnon growth MB | / heap-reading baseline |")
    print("| --- | ---: | ---: |")
    print(f"| Bridge, HTTP (sendfile from the page cache) | {http_growth:.1f} | {http_growth / heap_growth:.3f}x |")
    print(f"| Bridge, Flight DoGet (bodies are slices of the mapping) | {flight_growth:.1f} | "
          f"{flight_growth / heap_growth:.3f}x |")
    print(f"| baseline: read the file into a buffer, write it (Python http.server) | {heap_growth:.1f} | 1.000x |")
    print()
    print(f"| small cached result over HTTP (`{SMALL_SQL}`, format=arrow, keep-alive) | p50 us | p99 us |")
    print("| --- | ---: | ---: |")
    print(f"| from the cache | {hit_p50:.0f} | {hit_p99:.0f} |")
    print(f"| cache=off (the query runs) | {off_p50:.0f} | {off_p99:.0f} |")


def wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"cache_bench: {path} was not committed")
        time.sleep(0.01)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
