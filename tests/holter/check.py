"""Reads a DICOM copy of a Holter recording with pydicom and compares it with what was
recorded: every sample of every lead over the whole duration, across the instances' seams.

    check.py PREFIX LEADS RATE START FILE...

PREFIX-lead{N}.raw hold the recorded samples; START is the recording's start
(YYYYMMDDHHMMSS). Prints what it found; exits non-zero on the first difference.
"""

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
for path in files:
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.9.1.3", ds.SOPClassUID
    group = ds.WaveformSequence[0]
    assert int(group.NumberOfWaveformChannels) == leads
    assert float(group.SamplingFrequency) == rate, group.SamplingFrequency
    when = datetime.datetime.strptime(str(ds.AcquisitionDateTime)[:14], "%Y%m%d%H%M%S")
    assert when == begin + datetime.timedelta(seconds=at / rate), (path, when, at)
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
labels = [str(c.ChannelLabel) for c in pydicom.dcmread(files[0]).WaveformSequence[0]
          .ChannelDefinitionSequence]
print(f"{len(files)} instances, {at} samples per lead, leads {labels}: identical")
