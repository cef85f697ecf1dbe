"""QIDO-RS, WADO-RS and STOW-RS round trips with the `dicomweb-client` package against a
running telecardio, as three kinds of caller: the demo centre's cardiologist (reads the demo
clinic), the demo clinic (sends and reads its own), another clinic (sees nothing of the demo
clinic's), and an auditor without pixel access. Driven by tests/dicomweb.rs; every check is an
assert, so any difference fails the Rust test that runs this script."""

import io
import os
import sys

import numpy
import PIL.Image
import pydicom
import pydicom.encaps
from dicomweb_client.api import DICOMwebClient
from requests.exceptions import HTTPError

URL = os.environ["TC_URL"]
STUDY = os.environ["TC_STUDY"]
STOW_FILES = os.environ["TC_STOW_FILES"].split(os.pathsep)
STOW_STUDY = os.environ["TC_STOW_STUDY"]
ENC_STUDY = os.environ["TC_ENC_STUDY"]
ENCAPSULATED = os.environ["TC_ENCAPSULATED"].split(",")


def client(token):
    return DICOMwebClient(url=URL, headers={"Authorization": f"Bearer {token}"})


def status_of(call):
    try:
        call()
    except HTTPError as e:
        return e.response.status_code
    return 200


reader = client(os.environ["TC_READER_TOKEN"])
clinic = client(os.environ["TC_CLINIC_TOKEN"])
other = client(os.environ["TC_OTHER_TOKEN"])
auditor = client(os.environ["TC_AUDITOR_TOKEN"])
stranger = DICOMwebClient(url=URL)

# QIDO-RS: a name typed without diacritics finds the Lithuanian one.
studies = reader.search_for_studies(search_filters={"PatientName": "zukausk*"})
# (The compressed copies of the echo clip sit in a second study of the same patient.)
assert sorted(s["0020000D"]["Value"][0] for s in studies) == sorted([STUDY, ENC_STUDY]), studies
found = pydicom.Dataset.from_json(next(s for s in studies if s["0020000D"]["Value"][0] == STUDY))
assert str(found.PatientName) == "Žukauskienė^Rūta", found.PatientName
assert found.NumberOfStudyRelatedInstances == 5, found
assert reader.search_for_studies(search_filters={"StudyDate": "20260101-20261231"})
assert reader.search_for_studies(search_filters={"StudyDate": "19900101-19901231"}) == []
series = reader.search_for_series(study_instance_uid=STUDY)
assert len(series) == 5, series
ecg = reader.search_for_series(study_instance_uid=STUDY, search_filters={"Modality": "ECG"})
assert len(ecg) == 2, ecg
instances = reader.search_for_instances(study_instance_uid=STUDY)
assert len(instances) == 5, instances
page = reader.search_for_instances(study_instance_uid=STUDY, limit=2, offset=4)
assert len(page) == 1, page
with_all = reader.search_for_studies(search_filters={"StudyInstanceUID": STUDY}, get_remaining=False, fields=["all"])
# includefield=all adds what the default set leaves out (Issuer of Patient ID, descriptions).
assert "00100021" in with_all[0] and "00081030" in with_all[0], with_all

# WADO-RS: one instance, then the whole study, exactly as stored.
first = pydicom.Dataset.from_json(instances[0])
instance = reader.retrieve_instance(
    study_instance_uid=STUDY,
    series_instance_uid=first.SeriesInstanceUID,
    sop_instance_uid=first.SOPInstanceUID,
)
assert instance.SOPInstanceUID == first.SOPInstanceUID
assert str(instance.PatientName) == "Žukauskienė^Rūta"
whole = reader.retrieve_study(study_instance_uid=STUDY)
assert sorted(d.SOPInstanceUID for d in whole) == sorted(
    pydicom.Dataset.from_json(i).SOPInstanceUID for i in instances
)
assert any(hasattr(d, "PixelData") and len(d.PixelData) > 1000 for d in whole)

# WADO-RS metadata: each data set without its bulk data, which is fetched by its URI.
meta = reader.retrieve_study_metadata(study_instance_uid=STUDY)
assert len(meta) == 5, meta
by_uid = {m["00080018"]["Value"][0]: m for m in meta}
native_multiframe = None
for d in whole:
    m = by_uid[d.SOPInstanceUID]
    assert m["00100010"]["Value"][0]["Alphabetic"] == "Žukauskienė^Rūta", m["00100010"]
    assert pydicom.Dataset.from_json(m, bulk_data_uri_handler=lambda *a: b"").SOPClassUID == d.SOPClassUID
    if "PixelData" in d:
        assert "InlineBinary" not in m["7FE00010"], m["7FE00010"]
        assert b"".join(reader.retrieve_bulkdata(m["7FE00010"]["BulkDataURI"])) == d.PixelData
        if int(getattr(d, "NumberOfFrames", 1)) > 1:
            native_multiframe = d
    if "WaveformSequence" in d:
        uri = m["54000100"]["Value"][0]["54001010"]["BulkDataURI"]
        assert reader.retrieve_bulkdata(uri) == [d.WaveformSequence[0].WaveformData]
one = reader.retrieve_instance_metadata(
    study_instance_uid=STUDY,
    series_instance_uid=first.SeriesInstanceUID,
    sop_instance_uid=first.SOPInstanceUID,
)
assert one["00080018"]["Value"] == [first.SOPInstanceUID], one

# WADO-RS frames of native pixel data: the frame's bytes exactly, read from inside the object.
d = native_multiframe
size = d.Rows * d.Columns * d.SamplesPerPixel * d.BitsAllocated // 8
frames = reader.retrieve_instance_frames(
    study_instance_uid=STUDY,
    series_instance_uid=d.SeriesInstanceUID,
    sop_instance_uid=d.SOPInstanceUID,
    frame_numbers=[1, 30, 7],
    media_types=("application/octet-stream",),
)
assert frames == [d.PixelData[:size], d.PixelData[29 * size:30 * size], d.PixelData[6 * size:7 * size]]
png = reader.retrieve_instance_frames_rendered(
    study_instance_uid=STUDY,
    series_instance_uid=d.SeriesInstanceUID,
    sop_instance_uid=d.SOPInstanceUID,
    frame_numbers=[7],
    media_types=("image/png",),
)
assert (numpy.asarray(PIL.Image.open(io.BytesIO(png))) == d.pixel_array[6]).all()

# Encapsulated frames (JPEG baseline, RLE): the stored fragments, labelled with their syntax;
# rendered frames decode to what pydicom decodes from the same object.
for entry in ENCAPSULATED:
    series_uid, sop_uid, syntax, media, lossless = entry.split(":")
    ds = reader.retrieve_instance(
        study_instance_uid=ENC_STUDY, series_instance_uid=series_uid, sop_instance_uid=sop_uid
    )
    assert ds.file_meta.TransferSyntaxUID == syntax, ds.file_meta
    stored = list(pydicom.encaps.generate_frames(ds.PixelData, number_of_frames=int(ds.NumberOfFrames)))
    for media_types in [((media, syntax),), (("application/octet-stream", "*"),)]:
        got = reader.retrieve_instance_frames(
            study_instance_uid=ENC_STUDY,
            series_instance_uid=series_uid,
            sop_instance_uid=sop_uid,
            frame_numbers=[2, 17],
            media_types=media_types,
        )
        assert got == [stored[1], stored[16]], (syntax, media_types, [len(g) for g in got])
    # Not transcoded: asking for native bytes of compressed frames is refused.
    assert status_of(lambda: reader.retrieve_instance_frames(
        study_instance_uid=ENC_STUDY,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        frame_numbers=[1],
        media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),),
    )) == 406
    reference = ds.pixel_array[16].astype(int)
    for kind in ["image/png", "image/jpeg"]:
        image = reader.retrieve_instance_frames_rendered(
            study_instance_uid=ENC_STUDY,
            series_instance_uid=series_uid,
            sop_instance_uid=sop_uid,
            frame_numbers=[17],
            media_types=(kind,),
        )
        decoded = numpy.asarray(PIL.Image.open(io.BytesIO(image))).astype(int)
        assert decoded.shape == reference.shape, (decoded.shape, reference.shape)
        difference = abs(decoded - reference).mean()
        exact = kind == "image/png" and lossless == "lossless"
        assert (difference == 0) if exact else (difference < 3), (syntax, kind, difference)

# STOW-RS by the clinic, then found and retrieved by the centre.
datasets = [pydicom.dcmread(p) for p in STOW_FILES]
answer = clinic.store_instances(datasets=datasets)
assert len(answer.ReferencedSOPSequence) == len(datasets), answer
assert "FailedSOPSequence" not in answer, answer
stored = reader.search_for_instances(study_instance_uid=STOW_STUDY)
assert len(stored) == len(datasets), stored
back = reader.retrieve_instance(
    study_instance_uid=STOW_STUDY,
    series_instance_uid=datasets[0].SeriesInstanceUID,
    sop_instance_uid=datasets[0].SOPInstanceUID,
)
assert back.PixelData == datasets[0].PixelData
# Sending to a study URL the instances do not belong to: every instance fails (409).
assert status_of(lambda: clinic.store_instances(datasets=datasets[:1], study_instance_uid="1.2.3.4")) == 409

# Scoping: another clinic sees nothing of the demo clinic's, and gets 404 for its study.
assert other.search_for_studies() == []
assert other.search_for_studies(search_filters={"PatientID": "48507120014"}) == []
assert status_of(lambda: other.retrieve_study(study_instance_uid=STUDY)) == 404
assert status_of(
    lambda: other.retrieve_instance(
        study_instance_uid=STUDY,
        series_instance_uid=first.SeriesInstanceUID,
        sop_instance_uid=first.SOPInstanceUID,
    )
) == 404
for call in [
    lambda: other.retrieve_study_metadata(study_instance_uid=STUDY),
    lambda: other.retrieve_instance_frames(
        study_instance_uid=STUDY,
        series_instance_uid=d.SeriesInstanceUID,
        sop_instance_uid=d.SOPInstanceUID,
        frame_numbers=[1],
    ),
    lambda: other.retrieve_instance_frames_rendered(
        study_instance_uid=STUDY,
        series_instance_uid=d.SeriesInstanceUID,
        sop_instance_uid=d.SOPInstanceUID,
        frame_numbers=[1],
    ),
    lambda: other.retrieve_bulkdata(by_uid[d.SOPInstanceUID]["7FE00010"]["BulkDataURI"]),
]:
    assert status_of(call) == 404
# An auditor without a pixel grant reads metadata but neither frames nor bulk data.
assert len(auditor.retrieve_study_metadata(study_instance_uid=STUDY)) == 5
assert status_of(lambda: auditor.retrieve_instance_frames(
    study_instance_uid=STUDY,
    series_instance_uid=d.SeriesInstanceUID,
    sop_instance_uid=d.SOPInstanceUID,
    frame_numbers=[1],
)) == 403
assert status_of(lambda: auditor.retrieve_bulkdata(by_uid[d.SOPInstanceUID]["7FE00010"]["BulkDataURI"])) == 403
# The centre's cardiologist may read but not store; an auditor may search but neither store
# nor see pixel data; a stranger gets 401.
assert status_of(lambda: reader.store_instances(datasets=datasets[:1])) == 403
assert auditor.search_for_studies(search_filters={"StudyInstanceUID": STUDY})
assert status_of(lambda: auditor.store_instances(datasets=datasets[:1])) == 403
assert status_of(lambda: auditor.retrieve_study(study_instance_uid=STUDY)) == 403
assert status_of(lambda: stranger.search_for_studies()) == 401

print("dicomweb-client round trips: ok")
sys.exit(0)
