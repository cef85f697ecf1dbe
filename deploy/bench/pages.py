#!/usr/bin/env python3
"""Pages benchmark: the worklist page of a centre with 10,000 open cases, and what a browser
loads of ours.

A telecardio service (SQLite, release build) gets N open cases (default 10,000) written
straight into its index (varied urgency, examinations, Lithuanian names; the same rows routing
writes), a cardiologist signs in, and `GET /worklist` (the server-rendered page: query, scope,
audit record, template) and `GET /api/worklist` (the same query as JSON) are timed end to end
from the same machine, median of several runs. The page lists the first 1,000 cases (urgent
first, longest waiting first), as the API does. Run through deploy/bench/pages.sh.
"""

import argparse
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from query import Telecardio, timed  # noqa: E402
from store import ROOT, stop  # noqa: E402

NAMES = ["ŽUKAUSKIENĖ^RŪTA", "ČIURLIONIS^JONAS", "ŠIMKUS^ĄŽUOLAS", "ĘGLĖ^ŪLA", "JANKAUSKAS^VYTAUTAS"]


def fill(db_path, count):
    now = int(time.time() * 1_000_000)
    rows = []
    for n in range(count):
        ready = now - (count - n) * 60_000_000
        rows.append((
            f"bench-case-{n:06}", f"bench-ref-{n:06}", f"2.25.88{n:06}", "demo", "demo-centre",
            "", "new" if n % 3 else "in_progress",
            ["echo", "holter", "both"][n % 3], ["routine", "urgent", "emergency"][n % 7 % 3],
            f"3{50 + n % 40:02}0101{1000 + n % 9000:04}", NAMES[n % len(NAMES)], "19700101",
            "bench", "", None, "20260101", ready, ready, ready, ready, None, ready, ready))
    with sqlite3.connect(db_path) as db:
        db.executemany(
            "INSERT INTO cases (id, referral_id, study_uid, clinic_id, centre_id, reader, status,"
            " examination, urgency, patient_id, patient_name, birth_date, rule, claimed_by,"
            " claim_expires_at, referral_written, referral_at, data_at, ready_at, routed_at,"
            " claimed_at, created_at, updated_at) VALUES"
            " (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def sign_in(port, name, password):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("POST", "/api/login", json.dumps({"name": name, "password": password}),
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    connection.close()
    return cookie


def getter(port, path, cookie):
    def run():
        connection = http.client.HTTPConnection("127.0.0.1", port)
        connection.request("GET", path, headers={"Cookie": cookie})
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status == 200, (path, response.status, body[:200])
        return body
    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="tc-bench-pages-")
    tc = Telecardio(work)
    try:
        tc.start()
        fill(os.path.join(work, "telecardio.db"), args.cases)
        tc.cli("user", "add", "bench-reader", "--role", "cardiologist", "--institution",
               "demo-centre", "--password-stdin", stdin="bench password 2026\n")
        cookie = sign_in(tc.http, "bench-reader", "bench password 2026")
        page = getter(tc.http, "/worklist", cookie)
        # The page shows 200 cases; the last page is the one an OFFSET makes dearest.
        last_page = max(1, (args.cases + 199) // 200)
        last = getter(tc.http, f"/worklist?page={last_page}", cookie)
        api = getter(tc.http, "/api/worklist", cookie)
        body = page()
        rows = body.count(b"<tr")
        page_ms = timed(page, args.runs)
        last_ms = timed(last, args.runs)
        api_ms = timed(api, args.runs)
        assets = sum(os.path.getsize(os.path.join(ROOT, "assets", "web", f))
                     for f in ("app.js", "style.css"))
        print(f"open cases in the index:           {args.cases}")
        print(f"worklist page rows:                {rows - 1} ({len(body) // 1024} KiB of HTML)")
        print(f"GET /worklist (page), median:      {page_ms:.1f} ms")
        print(f"GET /worklist?page={last_page} (last), median: {last_ms:.1f} ms")
        print(f"GET /api/worklist (JSON), median:  {api_ms:.1f} ms")
        print(f"our scripts and styles:            {assets / 1024:.1f} KiB (budget 200 KiB)")
    finally:
        if hasattr(tc, "proc"):
            stop(tc.proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
