#!/usr/bin/env python3
"""Holter import benchmark: how long a recorder's file takes from upload to a stored, indexed
DICOM copy, and how much memory the service needs for it.

Two recordings, written by the independent writers the tests use: a 24-hour, 3-lead, 200 Hz
ISHNE 1.0 file (ishneholterlib; 104 MB) and a 48-hour, 12-lead, 1,000 Hz EDF+ file (pyedflib,
written an hour at a time; 4.1 GB). Each run starts a fresh service (SQLite, local directory
store), sends the referral, then times `curl -F file=@… -F referral=…` against
POST /api/holter as a whole: the upload over loopback, the original hashed and stored,
the copy written, hashed, stored and indexed hour by hour, the answer. The service's peak
resident memory (VmHWM) is read after each import. Medians of --runs runs, with min and max.
Run through deploy/bench/holter_import.sh.
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

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from query import Telecardio  # noqa: E402
from holter import peak_rss_mb  # noqa: E402
from store import ROOT, stop, wait_http  # noqa: E402

REFERRAL = os.path.join(ROOT, "tests", "fixtures", "form027-valid.xml")



def write_ishne(path, hours):
    from ishneholterlib import Holter, Lead
    rng = np.random.default_rng(24)
    h = Holter.__new__(Holter)
    h.filename = path
    h.is_annfile, h.beat_anns = False, []
    h.first_name, h.last_name, h.id = "Ruta", "Zukauskiene", "48507120013"
    h.sex, h.race = 2, 1
    h.birth_date = datetime.date(1985, 7, 12)
    h.record_date = h.file_date = datetime.date(2026, 3, 6)
    h.start_time = datetime.time(8, 30, 15)
    h.pm, h.recorder_type, h.sr = 0, b"digital", 200
    h.proprietary = h.copyright = h.reserved = ""
    h.var_block, h.file_version = b"", 1
    n = int(200 * 3600 * hours)
    h.lead = []
    for spec in (17, 18, 19):
        lead = Lead(spec, 1, 2500)
        lead.save_data(rng.integers(-2000, 2000, n, dtype=np.int16), convert=False)
        h.lead.append(lead)
    h.nleads = 3
    h.autofill_header()
    h.write_file(overwrite=True, convert_data=False)


def write_edf(path, hours):
    import pyedflib
    rng = np.random.default_rng(48)
    labels = ["ECG I", "ECG II", "ECG III", "ECG aVR", "ECG aVL", "ECG aVF",
              "ECG V1", "ECG V2", "ECG V3", "ECG V4", "ECG V5", "ECG V6"]
    edf = pyedflib.EdfWriter(path, len(labels), file_type=pyedflib.FILETYPE_EDFPLUS)
    edf.setSignalHeaders([{"label": label, "dimension": "uV", "sample_frequency": 1000,
                           "physical_max": 3276.7, "physical_min": -3276.8,
                           "digital_max": 32767, "digital_min": -32768,
                           "transducer": "", "prefilter": ""} for label in labels])
    edf.setPatientName("Ruta_Zukauskiene")
    edf.setStartdatetime(datetime.datetime(2026, 3, 6, 8, 30, 15))
    # An hour of noise reused: the writer's speed is not what is measured.
    hour = [rng.integers(-2000, 2000, 1000 * 3600, dtype=np.int16) for _ in labels]
    for _ in range(int(hours)):
        edf.writeSamples(hour, digital=True)
    edf.writeAnnotation(3600.5, 10, "Ventricular run")
    edf.close()


def one_import(path, run):
    """A fresh service, a referral, one upload; (seconds, peak RSS MB, answer)."""
    work = tempfile.mkdtemp(prefix="tc-bench-holter-import-")
    tc = Telecardio(work)
    tc.proc = None
    try:
        tc.cli("user", "add", "bench-clinic", "--role", "clinic", "--institution", "demo")
        token = tc.cli("token", "create", "bench-clinic").stdout.strip()
        tc.start()
        wait_http(tc.http, path="/healthz")
        with open(REFERRAL, encoding="utf-8") as f:
            document = f.read().replace("E027-DOC-0001", f"E027-DOC-B{run}")
        auth = f"Authorization: Bearer {token}"
        sent = subprocess.run(
            ["curl", "-sS", "-H", auth, "-H", "Content-Type: application/xml",
             "--data-binary", "@-", f"http://127.0.0.1:{tc.http}/api/referrals"],
            input=document.encode(), check=True, capture_output=True)
        referral = __import__("json").loads(sent.stdout)["id"]
        start = time.perf_counter()
        answer = subprocess.run(
            ["curl", "-sS", "-w", "\n%{http_code}", "-H", auth, "-F", f"referral={referral}",
             "-F", f"file=@{path}", f"http://127.0.0.1:{tc.http}/api/holter"],
            check=True, capture_output=True, text=True).stdout
        seconds = time.perf_counter() - start
        body, status = answer.rsplit("\n", 1)
        assert status == "201", answer[:500]
        return seconds, peak_rss_mb(tc.proc.pid), body
    finally:
        if tc.proc is not None:
            stop(tc.proc)
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ishne-hours", type=float, default=24)
    parser.add_argument("--edf-hours", type=int, default=48)
    args = parser.parse_args()
    files = tempfile.mkdtemp(prefix="tc-bench-holter-files-")
    try:
        cases = [
            (f"ISHNE 1.0, {args.ishne_hours:g} h, 3 leads, 200 Hz", "recording.ecg",
             write_ishne, args.ishne_hours, 5.0),
            (f"EDF+, {args.edf_hours} h, 12 leads, 1000 Hz", "recording.edf",
             write_edf, args.edf_hours, 60.0),
        ]
        rows = []
        for label, name, write, hours, target in cases:
            path = os.path.join(files, name)
            write(path, hours)
            size = os.path.getsize(path)
            times, peaks = [], []
            for run in range(args.runs):
                seconds, rss, _ = one_import(path, run)
                times.append(seconds)
                peaks.append(rss)
                print(f"  {label}: {seconds:.2f} s, peak RSS {rss:.0f} MB", flush=True)
            rows.append((label, size, times, peaks, target))
            os.remove(path)
        print()
        print("| recording | file | import, median (min, max) | MB/s | peak RSS, max | target |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, size, times, peaks, target in rows:
            median = statistics.median(times)
            print(f"| {label} | {size / 1e6:,.0f} MB | {median:.2f} s ({min(times):.2f}, "
                  f"{max(times):.2f}) | {size / 1e6 / median:,.0f} | {max(peaks):.0f} MB | "
                  f"< {target:g} s, < 100 MB |")
    finally:
        shutil.rmtree(files, ignore_errors=True)


if __name__ == "__main__":
    main()
