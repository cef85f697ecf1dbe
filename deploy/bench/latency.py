#!/usr/bin/env python3
"""C-STORE latency against the size of the index.

The same corpus of small objects (new to the index each time) is sent by DCMTK storescu over one
association to telecardio (SQLite, local directory, fsync on) with an empty index, then with an
index of `--large` instances built by `telecardio bench-index`. storescu logs each request and
response with microsecond stamps; a C-STORE's latency is from its request to its response.
Reports p50 and p99 of each run and their medians over the runs.

Run through deploy/bench/latency.sh, which installs the tools and builds the binary.
"""

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from store import BIN, ENV, ROOT, Telecardio, stop  # noqa: E402

LOG_CONFIG = """log4cplus.rootLogger = DEBUG, console
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{%H:%M:%S.%Q} %m%n
"""


def stamp(line):
    # log4cplus's %Q writes milliseconds and microseconds apart: 12:34:56.789.123
    clock = line.split(" ", 1)[0]
    head, _, micros = clock.rpartition(".")
    if head.count(".") == 1:
        clock = head + micros
    return datetime.datetime.strptime(clock, "%H:%M:%S.%f")


def latencies(output):
    """Milliseconds from each C-STORE request to its response, in order."""
    sent, took = None, []
    for line in output.splitlines():
        if "Sending Store Request" in line:
            sent = stamp(line)
        elif "Received Store Response" in line and sent is not None:
            took.append((stamp(line) - sent).total_seconds() * 1000)
            sent = None
    return took


def send(port, corpus, work):
    config = os.path.join(work, "log.cfg")
    with open(config, "w") as f:
        f.write(LOG_CONFIG)
    result = subprocess.run(
        ["storescu", "-lc", config, "-aet", "DEMO_CLINIC", "-aec", "TELECARDIO", "+sd", "+r",
         "127.0.0.1", str(port), corpus], env=ENV, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    took = latencies(result.stdout + result.stderr)
    if not took:
        raise RuntimeError("no C-STORE timings in storescu's log")
    return took


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def run(work, corpus, index_size, runs, settle):
    p50s, p99s = [], []
    for _ in range(runs):
        data = os.path.join(work, f"data-{index_size}")
        if index_size and not os.path.isdir(data):
            os.makedirs(data)
            subprocess.run([BIN, "--config", os.path.join(ROOT, "config", "telecardio.toml"),
                            "--data-dir", data, "bench-index", "--count", str(index_size)],
                           check=True, env=ENV, stdout=subprocess.DEVNULL)
        # Each run starts from the same index: a copy of the built one.
        run_dir = os.path.join(work, "run")
        shutil.rmtree(run_dir, ignore_errors=True)
        if index_size:
            shutil.copytree(data, run_dir)
        else:
            os.makedirs(run_dir)
        # The bench index's rows have no objects behind them: every fixity check would fail and
        # raise an alert, so the worker is off. The daily retention list runs at start (a
        # grouping of every instance row, about 2 s at 1,000,000) and is let finish first:
        # what is timed is a C-STORE against an index of that size, not the start-up.
        proc, port, _ = Telecardio("telecardio", env={"TELECARDIO_FIXITY__ENABLED": "false"}).start(run_dir)
        time.sleep(settle)
        try:
            took = send(port, corpus, work)
        finally:
            stop(proc)
        p50s.append(percentile(took, 0.50))
        p99s.append(percentile(took, 0.99))
    return statistics.median(p50s), statistics.median(p99s)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--count", type=int, default=1000, help="objects sent per run")
    ap.add_argument("--large", type=int, default=1_000_000, help="instances in the large index")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds between the service's start and the first C-STORE")
    ap.add_argument("--scratch", default=os.path.join(ROOT, "target", "bench"))
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    work = tempfile.mkdtemp(dir=args.scratch, prefix="latency-")
    try:
        corpus = os.path.join(work, "corpus")
        subprocess.run([BIN, "generate", "--set", "corpus", "--kind", "small", "--count",
                        str(args.count), "--out", corpus], check=True, env=ENV,
                       stdout=subprocess.DEVNULL)
        rows = []
        for size in (0, args.large):
            p50, p99 = run(work, corpus, size, args.runs, args.settle)
            rows.append((size, p50, p99))
            print(f"index of {size:>9} instances: p50 {p50:6.2f} ms, p99 {p99:6.2f} ms", flush=True)
        (_, p50_0, p99_0), (_, p50_l, p99_l) = rows
        print(f"\nat {args.large} / empty: p50 {p50_l / p50_0:.2f}x, p99 {p99_l / p99_0:.2f}x  [<= 1.5]")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
