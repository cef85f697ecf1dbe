#!/usr/bin/env python3
"""Indicator benchmark.

A year of generated cases (default 100,000: three clinics, two centres, repeated patients,
report versions, link exceptions, a fixity tally) is written as SQL by
tests/indicators/history.py and loaded into a fresh index: SQLite under a scratch data
directory, and PostgreSQL (a database of its own) when a server is reachable. Then
`telecardio indicators --year YEAR` runs as a whole process, in JSON, CSV and FHIR, several
times; each figure is the median. Target: under 5 s for the year. The dashboard page of the
same year (`GET /indicators?year=YEAR`, everything its charts need: the year, its twelve months,
turnaround per kind and priority, volumes per clinic) is timed too, through `telecardio serve`.

Run through deploy/bench/indicators.sh, which builds the binary.
"""

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import socket
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "telecardio")
CONFIG = os.path.join(ROOT, "config", "telecardio.toml")
YEAR = 2025


def cli(data, env, *args):
    return subprocess.run([BIN, "--config", CONFIG, "--data-dir", data, *args],
                          env=dict(os.environ, **env), capture_output=True, text=True)


def timed(data, env, fmt, runs):
    figures = []
    for _ in range(runs):
        started = time.monotonic()
        out = cli(data, env, "indicators", "--year", str(YEAR), "--format", fmt)
        figures.append(time.monotonic() - started)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
    return statistics.median(figures), min(figures), max(figures)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard(data, env, runs):
    """The dashboard page of YEAR, timed as an auditor's request to a running service."""
    out = cli(data, env, "user", "add", "bench-auditor", "--role", "auditor")
    if out.returncode != 0 and "exists" not in out.stderr:
        raise RuntimeError(out.stderr)
    token = cli(data, env, "token", "create", "bench-auditor").stdout.strip()
    port = free_port()
    log = open(os.path.join(data, "serve.log"), "w")
    server = subprocess.Popen(
        [BIN, "--config", CONFIG, "--data-dir", data, "serve", "--http-port", str(port),
         "--dicom-port", str(free_port())],
        env=dict(os.environ, TELECARDIO_HL7__LISTEN=f"127.0.0.1:{free_port()}", **env),
        stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the service did not start; see serve.log")
                time.sleep(0.1)
        figures = []
        for _ in range(runs):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/indicators?year={YEAR}",
                headers={"Authorization": f"Bearer {token}"})
            started = time.monotonic()
            with urllib.request.urlopen(request, timeout=600) as answer:
                body = answer.read()
            figures.append(time.monotonic() - started)
            if b"volume-by-clinic" not in body:
                raise RuntimeError("the dashboard has no charts")
        return statistics.median(figures), min(figures), max(figures)
    finally:
        server.terminate()
        server.wait()
        log.close()


def pg_database(url):
    name = f"tc_indicators_{os.getpid()}"
    subprocess.run(["psql", "-q", url, "-c", f"DROP DATABASE IF EXISTS {name}"],
                   capture_output=True)
    subprocess.run(["psql", "-q", url, "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    return url.rsplit("/", 1)[0] + "/" + name, name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pg", default=os.environ.get("TC_TEST_PG",
                                                   "postgres://postgres@127.0.0.1:5432/postgres"))
    a = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="tc-indicators-")
    try:
        history = os.path.join(scratch, "history")
        subprocess.run([sys.executable, os.path.join(ROOT, "tests", "indicators", "history.py"),
                        "--out", history, "--cases", str(a.cases), "--year", str(YEAR)],
                       check=True)
        script = os.path.join(history, "history.sql")
        engines = []
        data = os.path.join(scratch, "sqlite")
        os.makedirs(data)
        # The first run makes the schema; the rows go in behind the service's back.
        out = cli(data, {}, "indicators", "--year", str(YEAR))
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        db = sqlite3.connect(os.path.join(data, "telecardio.db"))
        with open(script) as f:
            db.executescript("BEGIN;" + f.read() + "COMMIT;")
        db.close()
        engines.append(("SQLite", data, {}))
        pg = None
        if subprocess.run(["psql", "-q", a.pg, "-c", "SELECT 1"], capture_output=True).returncode == 0:
            url, pg = pg_database(a.pg)
            env = {"TELECARDIO_DATABASE__URL": url}
            data_pg = os.path.join(scratch, "postgres")
            os.makedirs(data_pg)
            out = cli(data_pg, env, "indicators", "--year", str(YEAR))
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", url,
                            "-f", script], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(["psql", "-q", url, "-c", "ANALYZE"], check=True)
            engines.append(("PostgreSQL", data_pg, env))
        else:
            print("no PostgreSQL server reachable: SQLite only")
        print(f"indicators over a year of {a.cases:,} cases, median of {a.runs} runs "
              f"(min, max), target < 5 s:")
        for name, data, env in engines:
            for fmt in ("json", "csv", "fhir"):
                median, low, high = timed(data, env, fmt, a.runs)
                verdict = "meets" if median < 5 else "MISSES"
                print(f"  {name:<10} {fmt:<4} {median:6.2f} s  ({low:.2f}, {high:.2f})  {verdict}")
            median, low, high = dashboard(data, env, a.runs)
            verdict = "meets" if median < 5 else "MISSES"
            print(f"  {name:<10} page {median:6.2f} s  ({low:.2f}, {high:.2f})  {verdict}"
                  "  (dashboard)")
        if pg:
            subprocess.run(["psql", "-q", a.pg, "-c", f"DROP DATABASE IF EXISTS {pg}"],
                           capture_output=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
