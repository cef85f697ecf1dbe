#!/usr/bin/env python3
"""CPU cost of receiving, as instructions: `telecardio serve` runs under valgrind's callgrind
(SQLite, local directory, fsync on) while DCMTK storescu sends the small corpus (`telecardio
generate --set corpus --kind small`) over one association; a second run sends nothing but
one C-ECHO. The difference in instructions executed by the whole process, over the number of
objects, is the cost of one stored object: receiving, scanning, hashing, writing, indexing and
answering. Unlike a time, it is the same on a busy machine and a quiet one, so a change that
costs more shows up whatever the noise. Under valgrind SHA-256 takes the portable code path
(about 50 instructions a byte for the two digests), not the CPU's SHA extensions the service
uses on this machine, so the figure is also given without the SHA-256 compression function:
that is the part the service's own code decides.
Run through deploy/bench/cost.sh.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from store import BIN, ENV, ROOT, free_port, stop, wait_port  # noqa: E402


def instructions(work, corpus):
    """Total instructions of one service run: start, storescu (or one echo), stop."""
    port, http = free_port(), free_port()
    out = os.path.join(work, "callgrind.out")
    log = open(os.path.join(work, "serve.log"), "w")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         BIN, "--config", os.path.join(ROOT, "config", "telecardio.toml"), "serve",
         "--data-dir", os.path.join(work, "data"), "--dicom-port", str(port),
         "--http-port", str(http)],
        env=ENV, stdout=log, stderr=log)
    try:
        wait_port(port, proc, limit=600)
        if corpus:
            tool = ["storescu", "-aet", "DEMO_CLINIC", "-aec", "TELECARDIO", "+sd", "+r",
                    "127.0.0.1", str(port), corpus]
        else:
            tool = ["echoscu", "-aet", "DEMO_CLINIC", "-aec", "TELECARDIO", "127.0.0.1", str(port)]
        subprocess.run(tool, env=ENV, check=True, capture_output=True, timeout=3600)
    finally:
        stop(proc, timeout=600)
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", out],
                               check=True, capture_output=True, text=True).stdout
    total = sha = None
    for line in annotated.splitlines():
        fields = line.split()
        if not fields or not fields[0].replace(",", "").isdigit():
            continue
        count = int(fields[0].replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = count
        elif "sha2::sha256::compress256" in line:
            sha = (sha or 0) + count
    if total is None:
        raise RuntimeError("callgrind wrote no totals")
    return total, sha or 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=300, help="objects in the corpus")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="tc-bench-cost-")
    try:
        corpus = os.path.join(scratch, "corpus")
        subprocess.run([BIN, "generate", "--set", "corpus", "--kind", "small", "--count",
                        str(args.count), "--out", corpus], check=True, capture_output=True)
        files = [os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs]
        size = sum(os.path.getsize(f) for f in files)
        print(f"small corpus: {len(files)} objects, {size / 1e6:.1f} MB", flush=True)
        idle, busy = [], []
        for run in range(args.runs):
            for sent, into in ((None, idle), (corpus, busy)):
                work = tempfile.mkdtemp(dir=scratch)
                into.append(instructions(work, sent))
                shutil.rmtree(work, ignore_errors=True)
            print(f"  run {run + 1}: idle {idle[-1][0]:,} instructions, with the corpus "
                  f"{busy[-1][0]:,}", flush=True)
        # The idle run's cost moves by a few percent with the entropy the TLS library gathers
        # at start-up; its median is the baseline every run is measured against.
        base, base_sha = statistics.median(t for t, _ in idle), statistics.median(s for _, s in idle)
        costs = [(t - base) / len(files) for t, _ in busy]
        owns = [(t - s - (base - base_sha)) / len(files) for t, s in busy]
        cost, own = statistics.median(costs), statistics.median(owns)
        spread = (max(costs) - min(costs)) / cost * 100
        print(f"\n| instructions per stored object | without SHA-256 | per byte (without) | "
              f"spread over {args.runs} runs |")
        print("| --- | --- | --- | --- |")
        print(f"| {cost / 1e6:.2f} M | {own / 1e6:.2f} M | {cost * len(files) / size:.1f} "
              f"({own * len(files) / size:.1f}) | {spread:.2f} % |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
