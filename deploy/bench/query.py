#!/usr/bin/env python3
"""Query benchmark: a study-level search by Patient ID, over QIDO-RS and C-FIND.

1. Side by side on the same data: a corpus of tiny objects (`generate --set corpus --kind
   tiny`, default 100,000) is sent with DCMTK storescu to telecardio (SQLite) and to Orthanc
   (Debian package); then the same search runs against both: C-FIND with DCMTK findscu, and
   over HTTP (telecardio QIDO-RS, Orthanc REST `tools/find` with expanded answers).
2. telecardio alone at archive scale: an index of 1,000,000 instances filled with
   `telecardio bench-index` (the same patients, studies and UIDs the corpus would produce),
   then the same searches. Loading a million objects into Orthanc over DICOM would take hours
   on this machine, so the side-by-side comparison stays at the corpus size.

Every figure is the median of several runs (the machine is small and noisy). C-FIND times are
whole findscu runs (process start, association, query, release), so an echoscu run is
measured as the floor they include. Run through deploy/bench/query.sh.
"""

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from store import BIN, ENV, ROOT, free_port, stop, wait_http, wait_port  # noqa: E402

CONFIG = os.path.join(ROOT, "config", "telecardio.toml")


def patient_id(n):
    # Subject::numbered(n) in src/synth/iod.rs
    return f"3{50 + n % 40:02}0101{1000 + n:04}"


def timed(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def findscu(port, aec, pid, expect):
    def run():
        out = subprocess.run(
            ["findscu", "-v", "-S", "-aet", "DEMO_READER", "-aec", aec, "-k", "QueryRetrieveLevel=STUDY",
             "-k", "StudyInstanceUID", "-k", "PatientName", "-k", "StudyDate", "-k", f"PatientID={pid}",
             "127.0.0.1", str(port)],
            env=ENV, capture_output=True, text=True)
        answers = (out.stdout + out.stderr).count("(Pending)")
        if out.returncode != 0 or answers != expect:
            raise RuntimeError(f"findscu: {answers} answers, expected {expect}: {out.stderr[-1000:]}")
    return run


def echoscu(port, aec):
    def run():
        subprocess.run(["echoscu", "-aet", "DEMO_READER", "-aec", aec, "127.0.0.1", str(port)],
                       env=ENV, check=True, capture_output=True)
    return run


def http_get(port, path, headers, expect):
    conn = http.client.HTTPConnection("127.0.0.1", port)

    def run():
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or len(json.loads(body)) != expect:
            raise RuntimeError(f"{path}: {r.status} {body[:300]}")
    return run


def http_post(port, path, payload, expect):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    data = json.dumps(payload)

    def run():
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or len(json.loads(body)) != expect:
            raise RuntimeError(f"{path}: {r.status} {body[:300]}")
    return run


class Telecardio:
    def __init__(self, work):
        self.work = work
        self.port, self.http = free_port(), free_port()

    def cli(self, *args, stdin=None):
        return subprocess.run([BIN, "--config", CONFIG, "--data-dir", self.work, *args],
                              env=ENV, check=True, capture_output=True, text=True, input=stdin)

    def start(self):
        log = open(os.path.join(self.work, "serve.log"), "w")
        self.proc = subprocess.Popen(
            [BIN, "--config", CONFIG, "serve", "--data-dir", self.work,
             "--dicom-port", str(self.port), "--http-port", str(self.http)],
            env=ENV, stdout=log, stderr=log)
        wait_port(self.port, self.proc)

    def token(self):
        self.cli("user", "add", "bench-reader", "--role", "cardiologist", "--institution", "demo-centre")
        return self.cli("token", "create", "bench-reader").stdout.strip()


class Orthanc:
    def __init__(self, work):
        self.work = work
        self.port, self.http = free_port(), free_port()

    def start(self):
        config = {
            "Name": "bench", "StorageDirectory": os.path.join(self.work, "storage"),
            "IndexDirectory": os.path.join(self.work, "index"), "DicomAet": "ORTHANC",
            "DicomPort": self.port, "HttpPort": self.http, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomCheckCalledAet": False,
            "StorageCompression": False, "Plugins": [],
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowStore": True,
        }
        path = os.path.join(self.work, "orthanc.json")
        with open(path, "w") as f:
            json.dump(config, f)
        log = open(os.path.join(self.work, "orthanc.log"), "w")
        self.proc = subprocess.Popen(["Orthanc", path], env=ENV, stdout=log, stderr=log)
        wait_port(self.port, self.proc)
        wait_http(self.http)


def load(port, aec, corpus):
    start = time.time()
    subprocess.run(["storescu", "-aet", "DEMO_CLINIC", "-aec", aec, "+sd", "+r", "127.0.0.1",
                    str(port), corpus], env=ENV, check=True, capture_output=True)
    return time.time() - start


def measure_telecardio(tc, pid, runs, label, results):
    token = tc.token()
    auth = {"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"}
    qido = http_get(tc.http, f"/dicom-web/studies?PatientID={pid}", auth, 5)
    qido()
    results.append((label, "QIDO-RS studies?PatientID", timed(qido, runs)))
    results.append((label, "C-FIND (findscu run)", timed(findscu(tc.port, "TELECARDIO", pid, 5), runs)))
    results.append((label, "echoscu run (floor)", timed(echoscu(tc.port, "TELECARDIO"), runs)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=int, default=100_000, help="corpus size for the side-by-side")
    ap.add_argument("--large", type=int, default=1_000_000, help="telecardio index size")
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--scratch", default=None)
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(dir=args.scratch, prefix="tc-query-bench-")
    results = []
    try:
        corpus = os.path.join(scratch, "corpus")
        subprocess.run([BIN, "generate", "--set", "corpus", "--kind", "tiny", "--count",
                        str(args.shared), "--out", corpus], check=True, env=ENV)
        # A patient in the middle of the archive: five studies of twenty instances.
        pid = patient_id(args.shared // 200)

        tc = Telecardio(os.path.join(scratch, "tc-shared"))
        os.makedirs(tc.work)
        tc.start()
        try:
            took = load(tc.port, "TELECARDIO", corpus)
            print(f"telecardio loaded {args.shared} objects in {took:.0f} s", flush=True)
            measure_telecardio(tc, pid, args.runs, f"telecardio SQLite, {args.shared} instances", results)
        finally:
            stop(tc.proc)

        orthanc = Orthanc(os.path.join(scratch, "orthanc"))
        os.makedirs(orthanc.work)
        orthanc.start()
        try:
            took = load(orthanc.port, "ORTHANC", corpus)
            print(f"Orthanc loaded {args.shared} objects in {took:.0f} s", flush=True)
            label = f"Orthanc, {args.shared} instances"
            find = http_post(orthanc.http, "/tools/find",
                             {"Level": "Study", "Query": {"PatientID": pid}, "Expand": True}, 5)
            find()
            results.append((label, "REST tools/find PatientID (expanded)", timed(find, args.runs)))
            results.append((label, "C-FIND (findscu run)", timed(findscu(orthanc.port, "ORTHANC", pid, 5), args.runs)))
            results.append((label, "echoscu run (floor)", timed(echoscu(orthanc.port, "ORTHANC"), args.runs)))
        finally:
            stop(orthanc.proc)
        shutil.rmtree(corpus, ignore_errors=True)

        big = Telecardio(os.path.join(scratch, "tc-large"))
        os.makedirs(big.work)
        start = time.time()
        big.cli("bench-index", "--count", str(args.large))
        print(f"telecardio index of {args.large} instances built in {time.time() - start:.0f} s", flush=True)
        big.start()
        try:
            measure_telecardio(big, patient_id(args.large // 200), args.runs,
                               f"telecardio SQLite, {args.large} instances", results)
        finally:
            stop(big.proc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nstudy-level search by Patient ID, median of {args.runs} runs, milliseconds")
    for label, what, ms in results:
        print(f"  {label:40} {what:38} {ms:8.1f}")
    by = {(l, w): ms for l, w, ms in results}
    shared_tc = f"telecardio SQLite, {args.shared} instances"
    shared_or = f"Orthanc, {args.shared} instances"
    large_tc = f"telecardio SQLite, {args.large} instances"
    print(f"\nQIDO-RS at {args.large}: {by[(large_tc, 'QIDO-RS studies?PatientID')]:.1f} ms  [< 50]")
    print(f"C-FIND at {args.large}: {by[(large_tc, 'C-FIND (findscu run)')]:.1f} ms  [< 50]")
    print(f"HTTP search at {args.shared}, Orthanc / telecardio: "
          f"{by[(shared_or, 'REST tools/find PatientID (expanded)')] / by[(shared_tc, 'QIDO-RS studies?PatientID')]:.2f}")
    print(f"C-FIND at {args.shared}, Orthanc / telecardio: "
          f"{by[(shared_or, 'C-FIND (findscu run)')] / by[(shared_tc, 'C-FIND (findscu run)')]:.2f}")


if __name__ == "__main__":
    main()
