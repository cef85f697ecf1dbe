"""QIDO-RS, WADO-RS and STOW-RS round trips with the `dicomweb-client` package against a
running telecardio, as three kinds of caller: the demo centre's cardiologist (reads the demo
clinic), the demo clinic (sends and reads its own), another clinic (sees nothing of the demo
clinic's), and an auditor without pixel access. Driven by tests/dicomweb.rs; every check is an
assert, so any difference fails the Rust test that runs this script."""

import os
import sys

import pydicom
from dicomweb_client.api import DICOMwebClient
from requests.exceptions import HTTPError

URL = os.environ["TC_URL"]
STUDY = os.environ["TC_STUDY"]
STOW_FILES = os.environ["TC_STOW_FILES"].split(os.pathsep)
STOW_STUDY = os.environ["TC_STOW_STUDY"]


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
assert [s["0020000D"]["Value"][0] for s in studies] == [STUDY], studies
found = pydicom.Dataset.from_json(studies[0])
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
# The centre's cardiologist may read but not store; an auditor may search but neither store
# nor see pixel data; a stranger gets 401.
assert status_of(lambda: reader.store_instances(datasets=datasets[:1])) == 403
assert auditor.search_for_studies(search_filters={"StudyInstanceUID": STUDY})
assert status_of(lambda: auditor.store_instances(datasets=datasets[:1])) == 403
assert status_of(lambda: auditor.retrieve_study(study_instance_uid=STUDY)) == 403
assert status_of(lambda: stranger.search_for_studies()) == 401

print("dicomweb-client round trips: ok")
sys.exit(0)
