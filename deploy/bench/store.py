#!/usr/bin/env python3
"""Receiving benchmark: corpora sent by DCMTK storescu over loopback to four receivers.

Corpora: small objects over one association and over four at once, tiny objects over two,
large objects over one. Receivers: telecardio (SQLite), telecardio (PostgreSQL), DCMTK storescp
writing files, and Orthanc (Debian package); `--no-fsync` adds telecardio without flushes (not
for production: it shows what durability costs). For each: objects/s, MB/s and the receiver's
peak RSS, as the median of several runs (the machine is small and noisy), then the ratios the
targets name.

Run through deploy/bench/store.sh, which installs the tools and builds the binary.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "telecardio")
# No HL7 listener in a benchmarked service: its fixed default port would clash with any other
# service on the machine, and no benchmark sends HL7.
ENV = dict(os.environ, TCP_NODELAY="1", NO_COLOR="1", TELECARDIO_HL7__ENABLED="false")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, limit=60):
    start = time.time()
    while time.time() - start < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not open")


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def stop(proc, timeout=30):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Telecardio:
    def __init__(self, name, pg_admin=None, env=None):
        self.name = name
        self.pg_admin = pg_admin
        self.env = env or {}

    def start(self, work):
        port, http, hl7 = free_port(), free_port(), free_port()
        env = dict(ENV, **self.env)
        if self.pg_admin:
            db = f"bench_{os.getpid()}_{int(time.time() * 1000)}"
            subprocess.run(["psql", self.pg_admin, "-qc", f"CREATE DATABASE {db}"], check=True, env=env)
            env["TELECARDIO_DATABASE__URL"] = self.pg_admin.rsplit("/", 1)[0] + "/" + db
        log = open(os.path.join(work, "serve.log"), "w")
        proc = subprocess.Popen(
            [BIN, "--config", os.path.join(ROOT, "config", "telecardio.toml"), "serve",
             "--data-dir", work, "--dicom-port", str(port), "--http-port", str(http),
             "--hl7-port", str(hl7)],
            env=env, stdout=log, stderr=log)
        wait_port(port, proc)
        return proc, port, "TELECARDIO"


class Storescp:
    name = "dcmtk storescp (files)"

    def start(self, work):
        port = free_port()
        out = os.path.join(work, "out")
        os.makedirs(out)
        proc = subprocess.Popen(["storescp", "-od", out, "+xa", "-aet", "STORESCP", str(port)],
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, proc)
        return proc, port, "STORESCP"


class Orthanc:
    name = "orthanc"

    def start(self, work):
        port, http = free_port(), free_port()
        config = {
            "Name": "bench", "StorageDirectory": os.path.join(work, "storage"),
            "IndexDirectory": os.path.join(work, "index"), "DicomAet": "ORTHANC",
            "DicomPort": port, "HttpPort": http, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
            "StorageCompression": False, "Plugins": [],
        }
        path = os.path.join(work, "orthanc.json")
        with open(path, "w") as f:
            json.dump(config, f)
        log = open(os.path.join(work, "orthanc.log"), "w")
        proc = subprocess.Popen(["Orthanc", path], env=ENV, stdout=log, stderr=log)
        wait_port(port, proc)
        wait_http(http)
        return proc, port, "ORTHANC"


def wait_http(port, limit=60, path="/system"):
    start = time.time()
    while time.time() - start < limit:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except Exception:
            time.sleep(0.1)


def send(corpus, port, aec):
    """Sends every part of `corpus` (one directory per association) at once."""
    parts = sorted(os.path.join(corpus, p) for p in os.listdir(corpus))
    start = time.time()
    senders = [subprocess.Popen(
        ["storescu", "-aet", "DEMO_CLINIC", "-aec", aec, "+sd", "+r", "127.0.0.1", str(port), part],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for part in parts]
    failed = [(p.wait(), p.stderr.read()) for p in senders]
    elapsed = time.time() - start
    for code, err in failed:
        if code != 0:
            raise RuntimeError(f"storescu to {aec} failed:\n{err[-2000:]}")
    return elapsed


def split(source, target, parts):
    """`source`'s files dealt out into `parts` directories under `target` (hard links)."""
    if os.path.isdir(target):
        return target
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(source) for f in fs)
    for i in range(parts):
        os.makedirs(os.path.join(target, f"part{i}"))
    for n, f in enumerate(files):
        os.link(f, os.path.join(target, f"part{n % parts}", f"{n:07d}.dcm"))
    return target


def corpus_size(corpus):
    files = [os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs]
    return len(files), sum(os.path.getsize(f) for f in files)


def measure(receiver, corpus, scratch):
    work = tempfile.mkdtemp(dir=scratch)
    try:
        proc, port, aec = receiver.start(work)
        try:
            elapsed = send(corpus, port, aec)
            rss = peak_rss(proc.pid)
        finally:
            stop(proc)
        return elapsed, rss
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--small", type=int, default=2000, help="objects in the small corpus")
    ap.add_argument("--tiny", type=int, default=100_000, help="objects in the tiny corpus")
    ap.add_argument("--large", type=int, default=100, help="objects in the large corpus")
    ap.add_argument("--only", default="small,small4,tiny,large",
                    help="comma-separated corpora to run: small, small4, tiny, large")
    ap.add_argument("--no-fsync", action="store_true", help="also run telecardio without flushes")
    ap.add_argument("--scratch", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--pg", default=os.environ.get("TC_TEST_PG",
                                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()
    os.makedirs(args.scratch, exist_ok=True)

    receivers = [Telecardio("telecardio (SQLite)"), Telecardio("telecardio (PostgreSQL)", args.pg)]
    if args.no_fsync:
        receivers.append(Telecardio("telecardio (SQLite, no fsync)",
                                    env={"TELECARDIO_STORE__FSYNC": "false"}))
    receivers += [Storescp(), Orthanc()]
    # name: (generator kind, count, associations)
    plans = {"small": ("small", args.small, 1), "small4": ("small", args.small, 4),
             "tiny": ("tiny", args.tiny, 2), "large": ("large", args.large, 1)}
    labels = {"small": "small, 1 association", "small4": "small, 4 associations",
              "tiny": "tiny, 2 associations", "large": "large, 1 association"}
    wanted = [c.strip() for c in args.only.split(",") if c.strip()]

    results = {}
    for name in wanted:
        kind, count, associations = plans[name]
        whole = os.path.join(args.scratch, f"corpus-{kind}-{count}")
        if not os.path.isdir(whole):
            subprocess.run([BIN, "generate", "--set", "corpus", "--kind", kind, "--count", str(count),
                            "--out", whole], check=True, stdout=subprocess.DEVNULL)
        corpus = split(whole, f"{whole}-split{associations}", associations)
        n, size = corpus_size(corpus)
        print(f"\n{labels[name]}: {n} objects, {size / 1e6:.0f} MB; {args.runs} runs, medians",
              flush=True)
        samples = {r.name: [] for r in receivers}
        for run in range(args.runs):
            # Rotate the order so no receiver always runs first on a cold cache.
            order = receivers[run % len(receivers):] + receivers[:run % len(receivers)]
            for r in order:
                samples[r.name].append(measure(r, corpus, args.scratch))
        results[name] = {}
        print(f"{'receiver':30} {'objects/s':>10} {'MB/s':>8} {'peak RSS MB':>12} {'spread':>8}")
        for r in receivers:
            times = [s[0] for s in samples[r.name]]
            t = statistics.median(times)
            rss = max(s[1] for s in samples[r.name])
            spread = (max(times) - min(times)) / t
            results[name][r.name] = (n / t, size / 1e6 / t, rss / 1e6)
            print(f"{r.name:30} {n / t:10.1f} {size / 1e6 / t:8.1f} {rss / 1e6:12.1f} {spread:7.0%}",
                  flush=True)

    print("\nratios (targets in brackets)")
    targets = {"small": ("objects/s", "orthanc", 0, 2.0), "small4": ("objects/s", "orthanc", 0, 2.5),
               "tiny": ("objects/s", "orthanc", 0, 2.0),
               "large": ("MB/s", "dcmtk storescp (files)", 1, 0.9)}
    for name, res in results.items():
        unit, against, col, target = targets[name]
        for tc in ("telecardio (SQLite)", "telecardio (PostgreSQL)"):
            ratio = res[tc][col] / res[against][col]
            print(f"{labels[name]}, {unit}, {tc} / {against}: {ratio:.2f}  [>= {target}]")
    for name, res in results.items():
        for tc in ("telecardio (SQLite)", "telecardio (PostgreSQL)"):
            print(f"{labels[name]}, peak RSS of {tc}: {res[tc][2]:.0f} MB  [< 64]")


if __name__ == "__main__":
    sys.exit(main())
