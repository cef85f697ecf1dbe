"""A generated history of telecardiology cases with known clocks, and the indicators computed
from it independently of telecardio's own code.

    history.py --out DIR [--cases N] [--seed S] [--now ISO] [--secret TEXT] [--expect]
               [--year YYYY]

writes DIR/history.sql (rows for the index, the same statements on SQLite and PostgreSQL),
DIR/part-a.sql and DIR/part-b.sql (the same history split between two archives: clinics a and
b, then clinic c), and with --expect DIR/expected.json: every indicator of every period in
PERIODS, in total and per centre, clinic, kind and priority, as the domain defines them
(shared/domain.md section 5), plus the persons with a signed case in 2026 counted over the
union of the two parts.

The computation here reads the definitions of the shipped set and the contract targets from
config/indicators.toml as data; everything else (periods cut in Vilnius, Lithuanian business
days from the `holidays` package, exact medians and nearest-rank p90, persons keyed by
HMAC-SHA-256) is written here again on purpose.
"""

import argparse
import datetime as dt
import hashlib
import hmac
import json
import math
import os
import random
import sys
import tomllib
from zoneinfo import ZoneInfo

VILNIUS = ZoneInfo("Europe/Vilnius")
UTC = dt.timezone.utc
MICROS = 1_000_000
MINUTE = 60 * MICROS
HOUR = 60 * MINUTE
DAY = 24 * HOUR

CLINICS = ["clinic-a", "clinic-b", "clinic-c"]
CENTRES = {"centre-1": ["clinic-a", "clinic-b"], "centre-2": ["clinic-b", "clinic-c"]}
PERIODS = ["2025", "2026", "2025-Q4", "2026-Q1", "2025-10", "2026-03", "2026-11",
           "2025-12-15..2026-01-15"]


def micros(t):
    return int(t.timestamp()) * MICROS + t.microsecond


def vilnius_instant(y, m, d, hh=0, mm=0):
    return micros(dt.datetime(y, m, d, hh, mm, tzinfo=VILNIUS))


# --- persons -------------------------------------------------------------------------------

def check_digit(ten):
    w1 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1]
    w2 = [3, 4, 5, 6, 7, 8, 9, 1, 2, 3]
    s = sum(int(c) * w for c, w in zip(ten, w1)) % 11
    if s != 10:
        return s
    s = sum(int(c) * w for c, w in zip(ten, w2)) % 11
    return 0 if s == 10 else s


def personal_code(rng):
    born = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(0, 365 * 75))
    century = 3 if born.year < 2000 else 5
    first = century + rng.randrange(2)
    ten = f"{first}{born:%y%m%d}{rng.randrange(1000):03d}"
    return ten + str(check_digit(ten))


# --- the history ---------------------------------------------------------------------------

def sql_text(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def insert(table, row):
    cols = ", ".join(row)
    vals = ", ".join(sql_text(v) for v in row.values())
    return f"INSERT INTO {table} ({cols}) VALUES ({vals});"


def hl7_ts(us):
    t = dt.datetime.fromtimestamp(us / MICROS, VILNIUS)
    return t.strftime("%Y%m%d%H%M%S") + t.strftime("%z")


def generate(n, seed, now, year=None):
    rng = random.Random(seed)
    persons = [personal_code(rng) for _ in range(max(20, n * 6 // 10))]
    start = vilnius_instant(year or 2025, 1, 1)
    end = vilnius_instant(year, 12, 20) if year else vilnius_instant(2026, 11, 30)
    # Clocks placed on purpose at the year's end and at both daylight-saving changes.
    edges = [vilnius_instant(2026, 1, 1) - 90 * MINUTE, vilnius_instant(2026, 1, 1) + 40 * MINUTE,
             micros(dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),
             micros(dt.datetime(2025, 10, 26, 0, 30, tzinfo=UTC)),
             vilnius_instant(2025, 12, 31, 23, 0)]
    cases = []
    for i in range(n):
        clinic = rng.choice(CLINICS)
        centre = rng.choice([c for c, reads in CENTRES.items() if clinic in reads])
        kind = "echo" if rng.random() < 0.6 else "holter"
        priority = rng.choices(["routine", "urgent", "emergency"], [70, 25, 5])[0]
        person = rng.choice(persons)
        has_referral = rng.random() < 0.9
        t1 = rng.randrange(start, end) if i >= 40 else rng.choice(edges) + rng.randrange(-30, 30) * MINUTE
        t2 = t1 + rng.randrange(5, 600) * MINUTE
        if i < 40:
            # Edge cases: ready and signed right at the boundary.
            t2 = t1
        link = t2 + (rng.randrange(1, 60) * HOUR if rng.random() < 0.12 else 0)
        t3 = max(t2, link)
        c = {
            "id": f"case-{i:06d}", "clinic": clinic, "centre": centre, "kind": kind,
            "priority": priority, "person": person, "has_referral": has_referral,
            "patient_id": person if (has_referral or rng.random() < 0.5) else f"MRN-{i}",
            "t0": t1 - rng.randrange(1, 30) * DAY,
            "t1": t1 if rng.random() > 0.04 else None, "t2": t2, "t3": t3,
            "t4": None, "t5": None, "t6": None, "cancelled": False, "non_diagnostic": False,
            "versions": [], "reconciled": rng.random() < 0.05,
        }
        roll = rng.random()
        if roll < 0.03:
            c["cancelled"] = True
        elif roll < 0.95:
            c["t4"] = t3 + rng.randrange(0, 8 * 60) * MINUTE
            if rng.random() < 0.93:
                urgent = priority != "routine"
                span = rng.randrange(10, 6 * 60) if urgent else rng.randrange(60, 5 * 24 * 60)
                c["t5"] = c["t4"] + span * MINUTE
                c["non_diagnostic"] = rng.random() < 0.04
                c["versions"].append(c["t5"])
                if rng.random() < 0.06:
                    c["versions"].append(c["t5"] + rng.randrange(1, 72) * HOUR)
                if rng.random() < 0.9:
                    c["t6"] = c["t5"] + rng.randrange(1, 40 * 60) * MINUTE
        # Impossible clocks: delivered before signed, examined in the future.
        if c["t6"] is not None and rng.random() < 0.015:
            c["t6"] = c["t5"] - 30 * MINUTE
        if c["t1"] is not None and rng.random() < 0.006:
            c["t1"] = now + 20 * DAY
        cases.append(c)
    studies_alone = [{"id": f"alone-{i}", "clinic": rng.choice(CLINICS),
                      "at": rng.randrange(start, end), "reconciled": rng.random() < 0.2}
                     for i in range(max(3, n // 50))]
    days = []
    d = dt.date(2024, 12, 30)
    while d <= dt.date(2026, 12, 2):
        if rng.random() < 0.8:
            objects = rng.randrange(1, 400)
            days.append({"day": d.isoformat(), "objects": objects,
                         "failures": 1 if rng.random() < 0.01 else 0})
        d += dt.timedelta(days=1)
    return cases, studies_alone, days


def rows(cases, studies_alone, days):
    out = []
    for c in cases:
        study = "2.25." + str(int(hashlib.sha256(c["id"].encode()).hexdigest()[:30], 16))
        out.append(insert("studies", {
            "study_uid": study, "patient_id": c["patient_id"], "issuer": "", "study_date": "",
            "study_time": "", "accession_number": "", "accession_issuer": "", "study_id": "",
            "description": "", "referring_physician": "", "modalities": "US", "clinic_id": c["clinic"],
            "num_series": 1, "num_instances": 1, "total_bytes": 1000,
            "first_received_at": c["t2"] - MINUTE, "last_received_at": c["t2"],
            "examined_at": c["t1"]}))
        referral = ""
        if c["has_referral"]:
            referral = "ref-" + c["id"]
            out.append(insert("referrals", {
                "id": referral, "document_id": "doc-" + c["id"], "set_id": "set-" + c["id"], "version": 1,
                "effective_time": hl7_ts(c["t0"]), "personal_code": c["person"], "insured_code": "",
                "statistical_card": "", "family_name": "Žemaitė", "given_names": "Ona", "sex": "F",
                "birth_date": "", "author_id": "", "author_name": "", "author_organisation": "",
                "custodian": c["clinic"], "clinic_id": c["clinic"], "order_number": "",
                "examination": c["kind"], "examination_codes": "", "urgency": c["priority"],
                "reason": "", "warnings": "", "source": "api", "document_key": "",
                "document_sha256": "", "status": "linked", "study_uid": study, "received_by": "",
                "received_at": c["t3"], "updated_at": c["t3"]}))
        if c["reconciled"]:
            out.append(insert("link_exceptions", {
                "id": "exc-" + c["id"], "kind": "patient_mismatch", "clinic_id": c["clinic"],
                "referral_id": referral, "study_uid": study, "reason": "names differ",
                "status": "resolved", "resolution": "linked", "resolved_by": "admin",
                "created_at": c["t2"], "resolved_at": c["t3"]}))
        status = ("cancelled" if c["cancelled"] else "delivered" if c["t6"] is not None
                  else "reported" if c["t5"] is not None else "in_progress" if c["t4"] is not None
                  else "new")
        out.append(insert("cases", {
            "id": c["id"], "referral_id": referral, "study_uid": study, "clinic_id": c["clinic"],
            "centre_id": c["centre"], "reader": "", "status": status, "examination": c["kind"],
            "urgency": c["priority"], "patient_id": c["patient_id"], "patient_name": "",
            "birth_date": "", "rule": "", "claimed_by": "", "claim_expires_at": None,
            "referral_written": hl7_ts(c["t0"]) if referral else "",
            "referral_at": c["t3"] if referral else None, "data_at": c["t2"], "ready_at": c["t3"],
            "routed_at": c["t3"], "claimed_at": c["t4"], "created_at": c["t3"],
            "updated_at": c["t3"], "signed_at": c["t5"], "delivered_at": c["t6"],
            "report_version": len(c["versions"]) or None,
            "cancelled_at": c["t3"] + HOUR if c["cancelled"] else None,
            "cancelled_by": "admin" if c["cancelled"] else "",
            "cancel_reason": "sent in error" if c["cancelled"] else ""}))
        previous = ""
        for v, signed in enumerate(c["versions"], start=1):
            rid = f"rep-{c['id']}-{v}"
            out.append(insert("reports", {
                "id": rid, "case_id": c["id"], "version": v, "status": "signed", "findings": "",
                "conclusion": "norma", "recommendations": "", "free_text": "", "author": "reader",
                "amends": previous, "amendment_reason": "corrected" if previous else "",
                "signer": "reader", "signer_name": "", "signer_licence": "", "signer_centre": c["centre"],
                "signed_at": signed, "content_key": "", "content_sha256": "", "answer_key": "",
                "answer_sha256": "", "created_at": signed, "updated_at": signed,
                "non_diagnostic": 1 if c["non_diagnostic"] else 0}))
            previous = rid
    for s in studies_alone:
        study = "2.25." + str(int(hashlib.sha256(s["id"].encode()).hexdigest()[:30], 16))
        out.append(insert("studies", {
            "study_uid": study, "patient_id": "X", "issuer": "", "study_date": "", "study_time": "",
            "accession_number": "", "accession_issuer": "", "study_id": "", "description": "",
            "referring_physician": "", "modalities": "US", "clinic_id": s["clinic"], "num_series": 1,
            "num_instances": 1, "total_bytes": 1, "first_received_at": s["at"],
            "last_received_at": s["at"], "examined_at": None}))
        if s["reconciled"]:
            out.append(insert("link_exceptions", {
                "id": "exc-" + s["id"], "kind": "personal_code_mismatch", "clinic_id": s["clinic"],
                "referral_id": "", "study_uid": study, "reason": "codes differ", "status": "open",
                "resolution": "", "resolved_by": "", "created_at": s["at"], "resolved_at": None}))
    for d in days:
        out.append(insert("fixity_tally", {"day": d["day"], "objects": d["objects"],
                                           "bytes": d["objects"] * 1000, "failures": d["failures"]}))
    return out


# --- the independent computation -----------------------------------------------------------

def period_bounds(name):
    if ".." in name:
        a, b = name.split("..")
        first, last = dt.date.fromisoformat(a), dt.date.fromisoformat(b)
    elif "-Q" in name:
        y, q = name.split("-Q")
        first = dt.date(int(y), (int(q) - 1) * 3 + 1, 1)
        last = (dt.date(int(y) + (q == "4"), 1 if q == "4" else int(q) * 3 + 1, 1)
                - dt.timedelta(days=1))
    elif "-" in name:
        y, m = map(int, name.split("-"))
        first = dt.date(y, m, 1)
        last = dt.date(y + (m == 12), 1 if m == 12 else m + 1, 1) - dt.timedelta(days=1)
    else:
        first, last = dt.date(int(name), 1, 1), dt.date(int(name), 12, 31)
    start = micros(dt.datetime.combine(first, dt.time(), VILNIUS))
    end = micros(dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), VILNIUS))
    return start, end


def business_day(d, holidays_lt):
    return d.weekday() < 5 and d not in holidays_lt


def deadline(target, start, holidays_lt):
    kind, n = target
    if kind == "hours":
        return start + n * HOUR
    day = dt.datetime.fromtimestamp(start / MICROS, VILNIUS).date()
    if n == 0:
        while not business_day(day, holidays_lt):
            day += dt.timedelta(days=1)
    else:
        left = n
        while left:
            day += dt.timedelta(days=1)
            if business_day(day, holidays_lt):
                left -= 1
    return micros(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), VILNIUS))


def target_for(rules, c):
    best = None
    for r in rules:
        if all(r.get(k) in (None, c[v]) for k, v in
               [("clinic", "clinic"), ("centre", "centre"), ("kind", "kind"), ("priority", "priority")]):
            spec = sum(r.get(k) is not None for k in ("clinic", "centre", "kind", "priority"))
            if best is None or spec > best[0]:
                best = (spec, r)
    if best is None:
        return None
    r = best[1]
    return ("hours", r["hours"]) if "hours" in r else ("days", r["business_days"])


def target_minutes(t):
    return t[1] * 60 if t[0] == "hours" else max(t[1], 1) * 24 * 60


def target_text(t):
    if t[0] == "hours":
        return f"{t[1]} h"
    return "end of next business day" if t[1] == 1 else f"end of business day {t[1]}"


CLOCK = {"written": "t0", "examined": "t1", "received": "t2", "ready": "t3", "claimed": "t4",
         "signed": "t5", "delivered": "t6"}
ORDER = [("t1", "t2"), ("t2", "t3"), ("t3", "t4"), ("t4", "t5"), ("t5", "t6")]


def doubted(c, now):
    bad = set()
    if c["t1"] is not None and c["t1"] > now:
        bad.add("t1")
    for a, b in ORDER:
        if c[a] is not None and c[b] is not None and c[b] < c[a]:
            bad.update([a, b])
    return bad


def half_up(x):
    return math.floor(x + 0.5)


def share(p, b):
    return half_up(p * 10000.0 / b) / 100 if b else None


def median_p90(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return None, None
    median = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
    rank = max(1, -(-9 * n // 10))
    return half_up(median * 100) / 100, half_up(xs[rank - 1] * 100) / 100


class Tally:
    def __init__(self):
        self.b = self.p = self.excluded = 0
        self.persons = {}
        self.minutes = []
        self.targets = set()
        self.target_minutes = set()
        self.untargeted = False

    def person(self, key, met):
        if key:
            self.persons[key] = self.persons.get(key, True) and met

    def target(self, target):
        if target is None:
            self.untargeted = True
        else:
            self.targets.add(target_text(target))
            self.target_minutes.add(target_minutes(target))


def person_key(secret, c):
    if c["has_referral"]:
        code = c["person"]
    elif c["patient_id"] == c["person"]:
        code = c["person"]
    else:
        code = f"local\x1f{c['clinic']}\x1f\x1f{c['patient_id']}"
    return hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()


def compute(defs, rules, cases, studies, days, period, now, secret, holidays_lt):
    start, end = period_bounds(period)
    inside = lambda t: t is not None and start <= t < end
    by_id = {c["id"]: c for c in cases}
    out = {}
    for d in defs:
        tallies = {("total", None): Tally()}

        def strata(c):
            return [("total", None), ("centre", c["centre"]), ("clinic", c["clinic"]),
                    ("kind", c["kind"]), ("priority", c["priority"])]

        of = d["base"]["of"]
        if of == "cases":
            by = CLOCK[d["base"]["by"]]
            used = {by}
            num = d.get("numerator", {})
            for k in ("from", "to"):
                if k in num:
                    used.add(CLOCK[num[k]])
            for k in d.get("interval", []):
                used.add(CLOCK[k])
            for c in cases:
                if not inside(c[by]):
                    continue
                doubt = bool(doubted(c, now) & used) and not c["cancelled"]
                target = target_for(rules, c)
                key = person_key(secret, c)
                for s in strata(c):
                    t = tallies.setdefault(s, Tally())
                    if c["cancelled"] or doubt:
                        t.excluded += 1
                        continue
                    if d["kind"] == "proportion":
                        if "flag" in num:
                            met = {"referral_late": (not c["has_referral"]) or c["t3"] - c["t2"] > DAY,
                                   "non_diagnostic": c["non_diagnostic"]}[num["flag"]]
                        else:
                            a, b = c[CLOCK[num["from"]]], c[CLOCK[num["to"]]]
                            if a is None or b is None:
                                met = False
                            elif "within_hours" in num:
                                met = a <= b < a + num["within_hours"] * HOUR
                            else:
                                met = target is not None and a <= b < deadline(target, a, holidays_lt)
                        if num.get("within_contract"):
                            t.target(target)
                        t.b += 1
                        t.p += met
                        t.person(key, met)
                    elif d["kind"] == "continuous":
                        a, b = c[CLOCK[d["interval"][0]]], c[CLOCK[d["interval"][1]]]
                        if a is None or b is None:
                            t.excluded += 1
                            continue
                        if d.get("target_contract"):
                            t.target(target)
                        t.b += 1
                        t.minutes.append((b - a) / MINUTE)
                        t.person(key, True)
                    else:
                        t.b += 1
                        t.person(key, True)
        elif of == "reports":
            for c in cases:
                for i, signed in enumerate(c["versions"]):
                    if not inside(signed):
                        continue
                    key = person_key(secret, c)
                    for s in strata(c):
                        t = tallies.setdefault(s, Tally())
                        if c["cancelled"]:
                            t.excluded += 1
                            continue
                        t.b += 1
                        t.p += i > 0
                        t.person(key, i > 0)
        elif of == "studies":
            for s in studies:
                if inside(s["at"]):
                    for k in [("total", None), ("clinic", s["clinic"])]:
                        t = tallies.setdefault(k, Tally())
                        t.b += 1
                        t.p += s["reconciled"]
        elif of == "fixity_checks":
            t = tallies[("total", None)]
            for day in days:
                noon = micros(dt.datetime.fromisoformat(day["day"] + "T12:00:00+00:00"))
                if inside(noon):
                    t.b += day["objects"]
                    t.p += day["objects"] - day["failures"]
        for (by, value), t in tallies.items():
            v = {"b": t.b, "excluded": t.excluded, "persons_b": len(t.persons)}
            if d["kind"] == "proportion":
                v["p"] = t.p
                v["persons_p"] = sum(1 for all_met in t.persons.values() if all_met)
                v["score_pct"] = share(t.p, t.b)
                if "target_pct" in d and v["score_pct"] is not None:
                    v["target_met"] = {"up": v["score_pct"] >= d["target_pct"],
                                       "down": v["score_pct"] < d["target_pct"]}.get(d["direction"])
                else:
                    v["target_met"] = None
            elif d["kind"] == "continuous":
                v["median_min"], v["p90_min"] = median_p90(t.minutes)
                one = len(t.target_minutes) == 1 and not t.untargeted
                v["target_met"] = (v["median_min"] <= next(iter(t.target_minutes))
                                   if one and v["median_min"] is not None else None)
            else:
                v["p"] = len(t.persons)
            out[f"{d['code']}|{by}|{value or ''}"] = v
    return out


def exceptions(cases, now, period):
    """The cases with anything in the period whose clocks cannot be right."""
    start, end = period_bounds(period)
    touched = lambda c: any(c[k] is not None and start <= c[k] < end
                            for k in ("t1", "t2", "t3", "t4", "t5", "t6")) or any(
        start <= v < end for v in c["versions"])
    return sorted(c["id"] for c in cases
                  if touched(c) and not c["cancelled"] and doubted(c, now))


def dashboard(conf, cases, studies, days, year, now, secret, holidays_lt):
    """What the dashboard of `year` shows: turnaround by month per kind and priority, shares
    within target by month in total, cases signed per clinic and kind with unique persons."""
    defs, rules = conf["indicator"], conf["target"]
    months = [f"{year}-{m:02d}" for m in range(1, 13)]
    turnaround = [d for d in defs if d["kind"] == "continuous" and d.get("target_contract")]
    shares = [d for d in defs if d["kind"] == "proportion" and d["direction"] == "up"]
    volume = [d for d in defs if d["kind"] == "count"]
    groups = {}
    for kind, priority in sorted({(c["kind"], c["priority"]) for c in cases}):
        own = [c for c in cases if c["kind"] == kind and c["priority"] == priority]
        series = {}
        for m in months:
            values = compute(turnaround, rules, own, [], [], m, now, secret, holidays_lt)
            for d in turnaround:
                v = values.get(f"{d['code']}|total|")
                if v and v["b"] > 0:
                    series.setdefault(d["code"], {})[m] = {
                        "b": v["b"], "median_min": v["median_min"], "p90_min": v["p90_min"]}
        if series:
            groups[f"{kind}|{priority}"] = series
    by_month = {}
    for m in months:
        values = compute(shares, rules, cases, studies, days, m, now, secret, holidays_lt)
        by_month[m] = {d["code"]: values[f"{d['code']}|total|"]["score_pct"] for d in shares}
    clinics = {}
    for clinic in sorted({c["clinic"] for c in cases}):
        own = [c for c in cases if c["clinic"] == clinic]
        values = compute(volume, rules, own, [], [], year, now, secret, holidays_lt)
        code = volume[0]["code"]
        total = values[f"{code}|total|"]
        if total["b"] > 0:
            clinics[clinic] = {
                "cases": total["b"], "persons": total["p"],
                "by_kind": {k.split("|")[2]: v["b"] for k, v in values.items()
                            if k.startswith(f"{code}|kind|") and v["b"] > 0}}
    return {"turnaround": groups, "shares": by_month, "clinics": clinics}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--now", default=None)
    ap.add_argument("--secret", default="shared-platform-secret")
    ap.add_argument("--definitions", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                          "config", "indicators.toml"))
    ap.add_argument("--expect", action="store_true")
    ap.add_argument("--year", type=int, default=None,
                    help="every case in this one year (benchmarks); default: 2025 to November 2026")
    a = ap.parse_args()
    now = micros(dt.datetime.fromisoformat(a.now)) if a.now else micros(dt.datetime.now(UTC))
    cases, studies_alone, days = generate(a.cases, a.seed, now, a.year)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "history.sql"), "w") as f:
        f.write("\n".join(rows(cases, studies_alone, days)) + "\n")
    if not a.expect:
        return
    part_a = [c for c in cases if c["clinic"] != "clinic-c"]
    part_b = [c for c in cases if c["clinic"] == "clinic-c"]
    with open(os.path.join(a.out, "part-a.sql"), "w") as f:
        f.write("\n".join(rows(part_a, [], [])) + "\n")
    with open(os.path.join(a.out, "part-b.sql"), "w") as f:
        f.write("\n".join(rows(part_b, [], [])) + "\n")
    import holidays
    holidays_lt = holidays.LT(years=range(2024, 2028))
    with open(a.definitions, "rb") as f:
        conf = tomllib.load(f)
    studies = ([{"clinic": c["clinic"], "at": c["t2"] - MINUTE, "reconciled": c["reconciled"]}
                for c in cases] + studies_alone)
    expected = {"periods": {}, "now": now}
    for p in PERIODS:
        expected["periods"][p] = {
            "values": compute(conf["indicator"], conf["target"], cases, studies, days, p, now,
                              a.secret, holidays_lt),
            "exceptions": exceptions(cases, now, p),
        }
    start, end = period_bounds("2026")
    signed = [c for c in cases if c["t5"] is not None and start <= c["t5"] < end
              and not c["cancelled"] and not ({"t5"} & doubted(c, now))]
    expected["persons_2026"] = len({person_key(a.secret, c) for c in signed})
    expected["persons_2026_a"] = len({person_key(a.secret, c) for c in signed if c in part_a})
    expected["persons_2026_b"] = len({person_key(a.secret, c) for c in signed if c in part_b})
    expected["cases"] = len(cases)
    settled = {}
    for c in cases:
        if c["t5"] is not None and start <= c["t5"] < end and not c["cancelled"]:
            k = f"{c['centre']}|{c['clinic']}|{c['kind']}"
            settled.setdefault(k, []).append(c["id"])
    expected["settlement_2026"] = {k: sorted(v) for k, v in settled.items()}
    expected["dashboard_2025"] = dashboard(conf, cases, studies, days, "2025", now, a.secret,
                                           holidays_lt)
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
