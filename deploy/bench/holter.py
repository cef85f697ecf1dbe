#!/usr/bin/env python3
"""Holter benchmark: the overview of a 24-hour, 3-lead, 200 Hz recording (17,280,000 samples a
channel, 104 MB of samples) as the waveform viewer asks for it: the whole recording decimated
to 1,000 min/max points per channel, and one 10-second strip at paper speed.

The recording is the committed 10-minute Holter test object with its samples repeated to 24
hours (pydicom writes it). It is stored over DICOM with DCMTK storescu, the service restarted
(so its peak memory counts the viewer's requests only), then each request is timed end to end
(median of several runs) and the service's peak RSS (VmHWM) read afterwards.
Run through deploy/bench/holter.sh.
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
from query import Telecardio  # noqa: E402
from store import ENV, ROOT, stop  # noqa: E402

MAKE = r'''
import sys, pydicom
source, out, hours = sys.argv[1], sys.argv[2], float(sys.argv[3])
ds = pydicom.dcmread(source)
group = ds.WaveformSequence[0]
samples = int(group.NumberOfWaveformSamples)
frequency = float(group.SamplingFrequency)
wanted = int(hours * 3600 * frequency)
repeats = -(-wanted // samples)
frame = len(group.WaveformData) // samples
group.WaveformData = (bytes(group.WaveformData) * repeats)[: wanted * frame]
group.NumberOfWaveformSamples = wanted
ds.SeriesInstanceUID = "2.25.424242.1"
ds.SOPInstanceUID = "2.25.424242.1.1"
ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
ds.save_as(out, enforce_file_format=True)
print(ds.StudyInstanceUID)
'''


def get(port, path, token):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200, (path, response.status, body[:300])
    return json.loads(body)


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    python = os.path.join(ROOT, ".venv", "bin", "python")
    work = tempfile.mkdtemp(prefix="tc-bench-holter-")
    tc = Telecardio(work)
    try:
        recording = os.path.join(work, "holter-24h.dcm")
        study = subprocess.run(
            [python, "-c", MAKE, os.path.join(ROOT, "test-images", "holter-ambulatory.dcm"),
             recording, str(args.hours)],
            check=True, capture_output=True, text=True).stdout.strip()
        size_mb = os.path.getsize(recording) / 1e6
        tc.start()
        subprocess.run(["storescu", "-aet", "DEMO_CLINIC", "-aec", "TELECARDIO", "127.0.0.1",
                        str(tc.port), recording], env=ENV, check=True)
        token = tc.token()
        stop(tc.proc)
        tc.start()
        base = f"/api/waveforms/{study}/2.25.424242.1/2.25.424242.1.1"
        overview, strip = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            answer = get(tc.http, base + "?points=1000", token)
            overview.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            get(tc.http, base + "?start=43200&seconds=10&points=20000", token)
            strip.append((time.perf_counter() - start) * 1000)
        assert answer["mode"] == "minmax" and len(answer["values"][0]) == 2000, answer.keys()
        print(f"recording:                      {answer['samples']} samples x "
              f"{len(answer['values'])} channels, {size_mb:.0f} MB object")
        print(f"overview (1,000 min/max points), median: {statistics.median(overview):.0f} ms")
        print(f"10 s strip at noon, median:              {statistics.median(strip):.1f} ms")
        print(f"service peak RSS after the requests:     {peak_rss_mb(tc.proc.pid):.0f} MB")
    finally:
        if hasattr(tc, "proc"):
            stop(tc.proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
