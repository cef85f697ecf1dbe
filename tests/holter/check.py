"""Reads a DICOM copy of a Holter recording with pydicom and compares it with what was
recorded: every sample of every lead over the whole duration, across the instances' seams.

    check.py PREFIX LEADS RATE START FILE...

PREFIX-lead{N}.raw hold the recorded samples; START is the recording's start
(YYYYMMDDHHMMSS). Prints what it found; exits non-zero on the first difference. The files may
come in any order (they are put in order by their acquisition time). Where PREFIX-beats.txt
exists ("sample label" lines), the copy's waveform annotations must place exactly those beats;
where PREFIX-marks.txt exists ("onset_seconds duration_seconds text" lines), each must be
there, at its sample, as a point or a segment.
"""

import os

import datetime
import sys

import numpy as np
import pydicom

prefix, leads, rate, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
files = sys.argv[5:]
expected = [np.fromfile(f"{prefix}-lead{i}.raw", dtype="<i2") for i in range(leads)]
got = [[] for _ in range(leads)]
begin = datetime.datetime.strptime(start, "%Y%m%d%H%M%S")
at = 0
datasets = sorted((pydicom.dcmread(p) for p in files), key=lambda d: str(d.AcquisitionDateTime))
marks = []
for ds in datasets:
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.9.1.3", ds.SOPClassUID
    group = ds.WaveformSequence[0]
    assert int(group.NumberOfWaveformChannels) == leads
    assert float(group.SamplingFrequency) == rate, group.SamplingFrequency
    when = datetime.datetime.strptime(str(ds.AcquisitionDateTime)[:14], "%Y%m%d%H%M%S")
    assert when == begin + datetime.timedelta(seconds=at // rate), (ds.SOPInstanceUID, when, at)
    for a in ds.get("WaveformAnnotationSequence", []):
        rsp = a.ReferencedSamplePositions
        positions = [int(p) for p in (rsp if isinstance(rsp, (list, pydicom.multival.MultiValue))
                                      else [rsp])]
        marks.append((at + positions[0] - 1, [at + p - 1 for p in positions],
                      str(a.TemporalRangeType), str(a.UnformattedTextValue)))
    # Raw samples, not pydicom's scaled ones: the comparison is exact.
    raw = np.frombuffer(group.WaveformData, dtype="<i2").reshape(-1, leads)
    assert raw.shape[0] == int(group.NumberOfWaveformSamples)
    for i in range(leads):
        got[i].append(raw[:, i])
    at += raw.shape[0]
    # pydicom's own decoding applies each channel's sensitivity: it must read the object.
    ds.waveform_array(0)
for i in range(leads):
    whole = np.concatenate(got[i])
    assert whole.shape == expected[i].shape, (i, whole.shape, expected[i].shape)
    differ = np.flatnonzero(whole != expected[i])
    assert differ.size == 0, f"lead {i}: first difference at sample {differ[:1]}"
if os.path.exists(f"{prefix}-beats.txt"):
    beats = [line.split() for line in open(f"{prefix}-beats.txt")]
    want = [(int(s), label) for s, label in beats]
    found = [(first, text[0]) for first, _, kind, text in marks if kind == "POINT"]
    assert found == want, f"beats differ: {len(found)} found, {len(want)} written; " \
        f"first difference {next((p for p in zip(found, want) if p[0] != p[1]), None)}"
    print(f"{len(found)} beats placed as written")
if os.path.exists(f"{prefix}-marks.txt"):
    for line in open(f"{prefix}-marks.txt"):
        onset, duration, text = line.rstrip("\n").split(" ", 2)
        first = round(float(onset) * rate)
        hit = [m for m in marks if m[3] == text and m[0] == first]
        assert hit, f"no mark {text!r} at sample {first}: {marks[:5]}"
        if float(duration) > 0:
            assert hit[0][2] == "SEGMENT" and hit[0][1][1] == first + round(float(duration) * rate) - 1, hit
    print(f"{len(marks)} marks placed as written")
channels = datasets[0].WaveformSequence[0].ChannelDefinitionSequence
labels = [str(c.ChannelLabel) for c in channels]
print("sensitivities", [round(float(c.ChannelSensitivity), 6) for c in channels],
      [str(c.ChannelSensitivityUnitsSequence[0].CodeValue) for c in channels])
print(f"{len(files)} instances, {at} samples per lead, leads {labels}: identical")
