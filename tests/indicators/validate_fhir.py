"""Validates a FHIR R4 Bundle of Measures and MeasureReports with the `fhir.resources` package
(R4, 4.0.1), resource by resource, and prints a summary the test checks:

    validate_fhir.py BUNDLE.json

prints JSON: {"measures": n, "reports": n, "errors": [...], "scores": {"<reporter>|<group code>":
score}} and exits 1 when any resource does not validate.
"""

import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle
from fhir.resources.measure import Measure
from fhir.resources.measurereport import MeasureReport

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__


def main(path):
    with open(path) as f:
        data = json.load(f)
    errors = []
    out = {"measures": 0, "reports": 0, "errors": errors, "scores": {}, "counts": {}}
    try:
        Bundle.parse_obj({**data, "entry": []})
    except Exception as e:  # noqa: BLE001 - every failure is reported
        errors.append(f"Bundle: {e}")
    for entry in data.get("entry", []):
        resource = entry.get("resource", {})
        kind = resource.get("resourceType")
        try:
            if kind == "Measure":
                Measure.parse_obj(resource)
                out["measures"] += 1
            elif kind == "MeasureReport":
                report = MeasureReport.parse_obj(resource)
                out["reports"] += 1
                reporter = report.reporter.identifier.value
                for group in report.group or []:
                    code = group.code.coding[0].code
                    if group.measureScore is not None:
                        out["scores"][f"{reporter}|{code}"] = float(group.measureScore.value)
                    for population in group.population or []:
                        key = f"{reporter}|{code}|{population.code.coding[0].code}"
                        out["counts"][key] = population.count
            else:
                errors.append(f"unexpected resource {kind}")
        except Exception as e:  # noqa: BLE001
            errors.append(f"{kind} {resource.get('id')}: {e}")
    print(json.dumps(out))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
