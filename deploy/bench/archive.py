#!/usr/bin/env python3
"""Archive governance benchmark.

1. Fixity: `telecardio verify --all` over a corpus of large objects (echo clips, Holter
   recordings; `generate --set corpus --kind large`) received with DCMTK storescu, against the
   disk's sequential read speed measured in the same run (dd reading a file of the same total
   size, same directory, O_DIRECT). The page cache is dropped before each measurement when
   running as root (otherwise both read from memory and the script says so). Target: verify
   reads at >= 80 % of the disk's speed.
2. Audit trail: `telecardio audit verify` over 1,000,000 events (appended with
   `telecardio audit bench-fill`, chained as the service chains them), on SQLite and, when a
   server is reachable, PostgreSQL. Target: under 30 s.
3. Backup: an archive of 100,000 tiny objects (`generate --set corpus --kind tiny`, received
   with storescu) backed up once to a local directory, then again unchanged: the incremental
   run (index snapshot, both listings, nothing to copy). Target: under 10 s.

Every figure is the median of several runs (the machine is small and noisy).
Run through deploy/bench/archive.sh, which installs DCMTK and builds the binary.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from store import BIN, ENV, ROOT, free_port, stop, wait_port  # noqa: E402

CONFIG = os.path.join(ROOT, "config", "telecardio.toml")


def drop_caches():
    if os.geteuid() != 0:
        return False
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    return True


def cli(data, *args, env=None):
    out = subprocess.run([BIN, "--config", CONFIG, "--data-dir", data, *args],
                         env=dict(ENV, **(env or {})), capture_output=True, text=True)
    return out


def disk_read_mb_s(path):
    out = subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=8M", "iflag=direct"],
                         capture_output=True, text=True, check=True)
    # dd: "... bytes (...) copied, 1.234 s, 567 MB/s"
    line = out.stderr.strip().splitlines()[-1]
    seconds = float(line.split(",")[-2].strip().split()[0])
    size = int(line.split()[0])
    return size / seconds / 1e6


def fixity(args):
    corpus = os.path.join(args.scratch, f"corpus-large-{args.large}")
    if not os.path.isdir(corpus):
        subprocess.run([BIN, "generate", "--set", "corpus", "--kind", "large", "--count",
                        str(args.large), "--out", corpus], check=True)
    data = tempfile.mkdtemp(dir=args.scratch)
    try:
        port = free_port()
        proc = subprocess.Popen([BIN, "--config", CONFIG, "--data-dir", data, "serve",
                                 "--dicom-port", str(port), "--http-port", str(free_port())],
                                env=dict(ENV, TELECARDIO_FIXITY__ENABLED="false"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, proc)
            sent = subprocess.run(["storescu", "-aet", "DEMO_CLINIC", "-aec", "TELECARDIO", "+sd",
                                   "+r", "127.0.0.1", str(port), corpus],
                                  env=ENV, capture_output=True, text=True)
            if sent.returncode != 0:
                raise RuntimeError(sent.stderr[-2000:])
        finally:
            stop(proc)
        objects = os.path.join(data, "objects")
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(objects) for f in fs)
        reference = os.path.join(objects, "reference.bin")
        subprocess.run(["dd", "if=/dev/urandom", f"of={reference}", "bs=8M",
                        f"count={max(1, total // (8 << 20))}", "conv=fsync"],
                       check=True, capture_output=True)
        disk, verify = [], []
        dropped = True
        for _ in range(args.runs):
            dropped &= drop_caches()
            disk.append(disk_read_mb_s(reference))
            dropped &= drop_caches()
            start = time.perf_counter()
            out = cli(data, "verify", "--all", "--json")
            elapsed = time.perf_counter() - start
            report = json.loads(out.stdout)
            if out.returncode != 0 or report["failures"]:
                raise RuntimeError(f"verify failed: {out.stderr[-2000:]}")
            verify.append(report["bytes"] / elapsed / 1e6)
        d, v = statistics.median(disk), statistics.median(verify)
        print(f"\nfixity: {report['objects']} objects, {report['bytes'] / 1e6:.0f} MB; "
              f"{args.runs} runs, medians{'' if dropped else ' (page cache NOT dropped: run as root)'}")
        print(f"  disk sequential read (dd, O_DIRECT): {d:8.0f} MB/s")
        print(f"  telecardio verify --all:             {v:8.0f} MB/s  = {100 * v / d:.0f} % of the disk "
              f"(target >= 80 %)")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def audit(args, label, env):
    data = tempfile.mkdtemp(dir=args.scratch)
    try:
        start = time.perf_counter()
        out = cli(data, "audit", "bench-fill", "--count", str(args.events), env=env)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        fill = time.perf_counter() - start
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            out = cli(data, "audit", "verify", "--json", env=env)
            times.append(time.perf_counter() - start)
            report = json.loads(out.stdout)
            if out.returncode != 0 or not report["intact"]:
                raise RuntimeError(f"audit verify: {out.stdout[-2000:]} {out.stderr[-2000:]}")
        print(f"\naudit trail ({label}): {report['events']} events (filled in {fill:.0f} s); "
              f"{args.runs} runs, median")
        print(f"  telecardio audit verify: {statistics.median(times):6.1f} s (target < 30 s)")
    finally:
        shutil.rmtree(data, ignore_errors=True)


def backup(args):
    corpus = os.path.join(args.scratch, f"corpus-tiny-{args.objects}")
    if not os.path.isdir(corpus):
        subprocess.run([BIN, "generate", "--set", "corpus", "--kind", "tiny", "--count",
                        str(args.objects), "--out", corpus], check=True)
    data = tempfile.mkdtemp(dir=args.scratch)
    target = tempfile.mkdtemp(dir=args.scratch)
    try:
        port = free_port()
        proc = subprocess.Popen([BIN, "--config", CONFIG, "--data-dir", data, "serve",
                                 "--dicom-port", str(port), "--http-port", str(free_port())],
                                env=dict(ENV, TELECARDIO_FIXITY__ENABLED="false"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port, proc)
            sent = subprocess.run(["storescu", "-aet", "DEMO_CLINIC", "-aec", "TELECARDIO", "+sd",
                                   "+r", "127.0.0.1", str(port), corpus],
                                  env=ENV, capture_output=True, text=True)
            if sent.returncode != 0:
                raise RuntimeError(sent.stderr[-2000:])
        finally:
            stop(proc)
        start = time.perf_counter()
        out = cli(data, "backup", "--to", os.path.join(target, "b"), "--json")
        first = time.perf_counter() - start
        report = json.loads(out.stdout)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            out = cli(data, "backup", "--to", os.path.join(target, "b"), "--json")
            times.append(time.perf_counter() - start)
            again = json.loads(out.stdout)
            if out.returncode != 0 or again["copied"] != 0:
                raise RuntimeError(f"incremental backup copied {again['copied']}: {out.stderr[-2000:]}")
        print(f"\nbackup: {report['objects']} objects, {report['copied_bytes'] / 1e6:.0f} MB, "
              f"{report['index_rows']} index rows; {args.runs} runs, median")
        print(f"  first backup:                   {first:6.1f} s")
        print(f"  incremental backup, unchanged:  {statistics.median(times):6.1f} s (target < 10 s)")
    finally:
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)


def pg_database(url, name):
    admin = url
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name}"], check=True,
                   capture_output=True)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return url.rsplit("/", 1)[0] + "/" + name


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--large", type=int, default=40, help="objects in the fixity corpus")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--objects", type=int, default=100_000, help="objects in the backup archive")
    ap.add_argument("--only", choices=["fixity", "audit", "backup"])
    ap.add_argument("--scratch", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--pg", default=os.environ.get("TC_TEST_PG",
                                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)
    if args.only in (None, "fixity"):
        fixity(args)
    if args.only in (None, "backup"):
        backup(args)
    if args.only in (None, "audit"):
        audit(args, "SQLite", {})
        if subprocess.run(["psql", args.pg, "-qc", "select 1"], capture_output=True).returncode == 0:
            url = pg_database(args.pg, "telecardio_bench_audit")
            audit(args, "PostgreSQL", {"TELECARDIO_DATABASE__URL": url})


if __name__ == "__main__":
    main()
