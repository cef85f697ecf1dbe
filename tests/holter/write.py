"""Holter recordings written by software nobody here wrote: ISHNE 1.0 by `ishneholterlib`,
EDF+ by `pyedflib`; with the samples each holds, as raw little-endian int16 per lead, for the
test to compare the DICOM copy against.

    write.py OUT_DIR SECONDS

Writes OUT_DIR/recording.ecg (3 EASI leads, 200 Hz, 2.5 and 5 µV a unit, a lead fault) with
its beat annotations OUT_DIR/recording.ann (the THEW layout, read back by ishneholterlib, whose
beats go to OUT_DIR/ishne-beats.txt as "sample label" lines), OUT_DIR/recording.edf (ECG II and
ECG V5 at 250 Hz in µV and mV, respiration at 25 Hz, two annotations), and
OUT_DIR/{ishne,edf}-lead{N}.raw.
"""

import datetime
import os
import sys

import ishneholterlib
import numpy as np
import pyedflib
from ishneholterlib import Holter, Lead

out, seconds = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(16)

# ishneholterlib reads files; a new one is made by filling the fields its writer uses.
h = Holter.__new__(Holter)
h.filename = os.path.join(out, "recording.ecg")
h.is_annfile, h.beat_anns = False, []
h.first_name, h.last_name, h.id = "Ruta", "Zukauskiene", "48507120013"
h.sex, h.race = 2, 1
h.birth_date = datetime.date(1985, 7, 12)
h.record_date = datetime.date(2026, 3, 6)
h.file_date = datetime.date(2026, 3, 7)
h.start_time = datetime.time(8, 30, 15)
h.pm, h.recorder_type, h.sr = 0, b"digital", 200
h.proprietary = h.copyright = h.reserved = ""
h.var_block, h.file_version = b"", 1
n = 200 * seconds
h.lead = []
for i, (spec, res) in enumerate([(17, 2500), (18, 2500), (19, 5000)]):
    data = rng.integers(-32767, 32767, n, dtype=np.int16)
    if i == 1:
        data[1234] = -32768  # a lead fault
    lead = Lead(spec, 1, res)
    lead.save_data(data, convert=False)
    h.lead.append(lead)
    data.astype("<i2").tofile(os.path.join(out, f"ishne-lead{i}.raw"))
h.nleads = 3
h.autofill_header()
h.write_file(overwrite=True, convert_data=False)

# Beat annotations: ishneholterlib only reads them, so they are written to the THEW layout
# here (the ISHNE header under magic "ANN  1.0", the first beat's sample, then label,
# internal code and int16 samples since the beat before) and read back by ishneholterlib.
header = h.get_header_bytes()
with open(os.path.join(out, "recording.ann"), "wb") as f:
    f.write(b"ANN  1.0")
    f.write(h.compute_checksum(header_block=header))
    f.write(header)
    f.write(np.uint32(150).tobytes())
    at, k = 150, 0
    while True:
        toc = int(rng.integers(120, 260))
        if at + toc >= n:
            break
        at += toc
        k += 1
        label = b"V" if k % 50 == 0 else b"N"
        f.write(label + b"0" + np.int16(toc).tobytes())
# ishneholterlib's reader calls numpy's tostring(), gone from numpy 2: its checksum is
# computed here the same way (its own CRC class over the same bytes) with tobytes().
def compute_checksum(self, header_block=None):
    if header_block is None:
        with open(self.filename, "rb") as f:
            f.seek(10)
            header_block = f.read(self.ecg_block_offset - 10)
    return np.uint16(ishneholterlib.Crc16CcittFalse.calc(header_block))


Holter.compute_checksum = compute_checksum
check = Holter(h.filename)
check.load_ann(os.path.join(out, "recording.ann"))
with open(os.path.join(out, "ishne-beats.txt"), "w") as f:
    for beat in check.beat_anns:
        f.write(f"{beat['samp_num']} {beat['ann']}\n")

edf = pyedflib.EdfWriter(os.path.join(out, "recording.edf"), 3,
                         file_type=pyedflib.FILETYPE_EDFPLUS)
signals = [("ECG II", "uV", 250, 3276.7, -3276.8), ("ECG V5", "mV", 250, 5.0, -5.0),
           ("Resp", "Ohm", 25, 100.0, 0.0)]
edf.setSignalHeaders([{"label": label, "dimension": dim, "sample_frequency": rate,
                       "physical_max": pmax, "physical_min": pmin, "digital_max": 32767,
                       "digital_min": -32768, "transducer": "", "prefilter": ""}
                      for label, dim, rate, pmax, pmin in signals])
edf.setStartdatetime(datetime.datetime(2026, 3, 6, 8, 30, 15))
data = [rng.integers(-32767, 32767, rate * seconds, dtype=np.int16)
        for _, _, rate, _, _ in signals]
edf.writeSamples(data, digital=True)
edf.writeAnnotation(12.5, 0.2, "Ventricular run")
edf.writeAnnotation(20, -1, "Patient event")
edf.close()
for i in range(2):
    data[i].astype("<i2").tofile(os.path.join(out, f"edf-lead{i}.raw"))
