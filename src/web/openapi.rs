//! `/api/openapi.json`: the OpenAPI 3.1 description of the JSON API (DICOMweb is described by
//! PS3.18 itself). Written by hand next to the routes it describes; a test checks that every
//! route is documented, and the HTTP tests fetch it as a client would.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

pub async fn document() -> Response {
    Json(spec()).into_response()
}

pub(super) fn problem() -> Value {
    json!({
        "description": "A problem",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

pub fn spec() -> Value {
    let mut spec = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "telecardio",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Telecardiology archive and workflow service. Every path except \
                /healthz (and /metrics from loopback or with the scrape token) needs a session \
                cookie from POST /api/login or a bearer token (`telecardio token create`, or a \
                JWT from the hospital's identity provider). DICOMweb (QIDO-RS, WADO-RS, \
                STOW-RS) is served under /dicom-web as PS3.18 describes it."
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "tc_session"}
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string", "description": "What is wrong"},
                        "field": {"type": "string", "description": "The input at fault"}
                    }
                },
                "Referral": {
                    "type": "object",
                    "required": ["id", "status", "patient", "order_number", "examination", "urgency"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"enum": ["awaiting_examination", "linked"]},
                        "document_id": {"type": "string", "description": "ClinicalDocument/id as root^extension"},
                        "patient": {"type": "object", "properties": {
                            "personal_code": {"type": "string"},
                            "insured_code": {"type": "string"},
                            "statistical_card": {"type": "string"},
                            "family_name": {"type": "string"},
                            "given_names": {"type": "string"},
                            "sex": {"type": "string"},
                            "birth_date": {"type": "string"}
                        }},
                        "clinic_id": {"type": "string"},
                        "order_number": {"type": "string"},
                        "examination": {"enum": ["echo", "holter", "both", "other"]},
                        "urgency": {"enum": ["routine", "urgent", "emergency"]},
                        "reason": {"type": "string"},
                        "warnings": {"type": "array", "items": {"type": "string"}},
                        "study_uid": {"type": "string"}
                    }
                },
                "Principal": {
                    "type": "object",
                    "required": ["name", "role", "institution", "via"],
                    "properties": {
                        "name": {"type": "string"},
                        "role": {"enum": ["clinic", "cardiologist", "auditor", "admin"]},
                        "institution": {"type": "string", "description": "Clinic or centre id; empty for auditors and admins"},
                        "via": {"enum": ["dicom", "session", "token", "jwt"]}
                    }
                }
            }
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/login": {"post": {
                "summary": "Sign in with a local account; sets the session cookie",
                "security": [],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["name", "password"],
                    "properties": {"name": {"type": "string"}, "password": {"type": "string"}}
                }}}},
                "responses": {
                    "200": {"description": "Signed in", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Principal"}}}},
                    "400": problem(),
                    "401": problem(),
                    "429": {
                        "description": "Sign-in paused after repeated failures for this name or address",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                    }
                }
            }},
            "/api/logout": {"post": {
                "summary": "End the session",
                "responses": {"204": {"description": "Signed out"}, "401": problem()}
            }},
            "/api/me": {"get": {
                "summary": "Who the caller is",
                "responses": {
                    "200": {"description": "The caller", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Principal"}}}},
                    "401": problem()
                }
            }},
            "/api/openapi.json": {"get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1"}, "401": problem()}
            }},
            "/api/referrals": {"get": {
                "summary": "Referrals the caller may see, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": ["awaiting_examination", "linked"]}},
                    {"name": "order_number", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 100, "maximum": 10000}}
                ],
                "responses": {"200": {"description": "{\"referrals\": [Referral…]}"}, "400": problem()}
            }, "post": {
                "summary": "Send a form 027 referral (HL7 CDA R2 in our profile); clinics only",
                "requestBody": {"required": true, "content": {
                    "application/hl7-cda+xml": {"schema": {"type": "string"}},
                    "application/xml": {"schema": {"type": "string"}}
                }},
                "responses": {
                    "201": {"description": "Received", "headers": {"Location": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Referral"}}}},
                    "200": {"description": "This document was already received: its referral",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Referral"}}}},
                    "400": problem(),
                    "403": problem(),
                    "413": problem(),
                    "415": problem(),
                    "422": {"description": "Not an acceptable referral; `field` names what to fix",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
                }
            }},
            "/api/referrals/{id}": {"get": {
                "summary": "A referral the caller may see",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The referral", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Referral"}}}},
                    "404": problem()
                }
            }},
            "/api/referrals/{id}/journal": {"get": {
                "summary": "The registration journal entries of a referral's case, oldest first (JSON, or CSV with format=csv or Accept: text/csv)",
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}
                ],
                "responses": {"200": {"description": "{\"referral\": id, \"entries\": [...]}, or text/csv"}, "400": problem(), "404": problem()}
            }},
            "/api/journal": {"get": {
                "summary": "Patient registration journal entries within the caller's scope, oldest first: one patient's (and of identifiers merged into them) and/or a period",
                "parameters": [
                    {"name": "patient", "in": "query", "schema": {"type": "string"}, "description": "Personal code (or other patient identifier)"},
                    {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time, or a date YYYY-MM-DD (from its start, UTC)"},
                    {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time, or a date YYYY-MM-DD (to its end, UTC)"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 10000, "maximum": 100000}},
                    {"name": "format", "in": "query", "schema": {"enum": ["json", "csv"]}}
                ],
                "responses": {"200": {"description": "{\"entries\": [...]}, or text/csv"}, "400": problem()}
            }},
            "/api/link-exceptions": {"get": {
                "summary": "Referral–study links left for an administrator, with the reason (patient_mismatch, personal_code_mismatch, duplicate_claim)",
                "parameters": [{"name": "status", "in": "query", "schema": {"enum": ["open", "resolved"], "default": "open"}}],
                "responses": {"200": {"description": "{\"exceptions\": [...]}"}, "400": problem()}
            }},
            "/api/link-exceptions/{id}/resolve": {"post": {
                "summary": "Administrators: link the pair despite the doubt, or reject it (audited, journaled)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["decision"],
                    "properties": {"decision": {"enum": ["link", "reject"]}, "note": {"type": "string"}}
                }}}},
                "responses": {"200": {"description": "The resolved exception"}, "400": problem(), "403": problem(), "404": problem(), "409": problem()}
            }},
            "/api/referrals/{id}/unlink": {"post": {
                "summary": "Administrators: undo a referral's link (audited, journaled)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}
                }}}},
                "responses": {"200": {"description": "The referral, waiting again"}, "400": problem(), "403": problem(), "404": problem(), "409": problem()}
            }},
            "/api/studies/unlinked": {"get": {
                "summary": "Studies no referral is linked to yet",
                "responses": {"200": {"description": "{\"studies\": [...]}"}}
            }},
            "/api/ownership-refusals": {"get": {
                "summary": "Administrators and auditors: objects refused because they named a study, series or SOP instance another clinic owns (nothing of them was stored), newest first",
                "parameters": [
                    {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time or a date"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}}
                ],
                "responses": {"200": {"description": "{\"refusals\": [{at, clinic_id, owner_id, what, uid, sop_instance_uid, door, actor, address}]}"}, "400": problem(), "403": problem()}
            }},
            "/api/worklist": {"get": {
                "summary": "Cases to read: a cardiologist's centre's, a clinic's own, all for administrators and auditors (unrouted included); most urgent, then longest waiting, first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": ["unrouted", "new", "in_progress", "reported", "delivered"]}, "description": "Default: the open ones (unrouted, new, in_progress)"},
                    {"name": "urgency", "in": "query", "schema": {"enum": ["routine", "urgent", "emergency"]}},
                    {"name": "examination", "in": "query", "schema": {"enum": ["echo", "holter", "both", "other"]}},
                    {"name": "mine", "in": "query", "schema": {"type": "boolean"}, "description": "Only cases assigned to or claimed by the caller"},
                    {"name": "centre", "in": "query", "schema": {"type": "string"}, "description": "Administrators and auditors: one centre's cases"},
                    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}, "description": "Cases skipped, in the list's order (paging)"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}}
                ],
                "responses": {"200": {"description": "{\"cases\": [...]} with status, urgency, waiting_minutes, patient, clinic, examination, claim and clocks"}, "400": problem()}
            }},
            "/api/cases/{id}": {"get": {
                "summary": "One case within the caller's scope",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The case"}, "404": problem()}
            }},
            "/api/cases/{id}/claim": {"post": {
                "summary": "Cardiologists: take the case (renews one's own claim); the claim lapses after routing.claim_seconds without activity",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The case, in progress"}, "403": problem(), "404": problem(), "409": problem()}
            }},
            "/api/cases/{id}/report": {"put": {
                "summary": "Cardiologists: save one's draft of the case's report (renews the claim); a correction of a signed report needs amendment_reason",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"findings": {"type": "string"}, "conclusion": {"type": "string"}, "recommendations": {"type": "string"}, "free_text": {"type": "string"}, "amendment_reason": {"type": "string"}, "non_diagnostic": {"type": "boolean", "description": "the study cannot be read; a repeat is requested (indicator TC-07)"}}
                }}}},
                "responses": {"200": {"description": "The draft"}, "400": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/cases/{id}/report/sign": {"post": {
                "summary": "Cardiologists: sign one's draft (needs a conclusion and the signer's name and licence number); the signed content is frozen in the store",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The signed version"}, "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/cases/{id}/reports": {"get": {
                "summary": "Every signed version of the case's report (and the caller's own draft), oldest first",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{\"case_id\": id, \"reports\": [...]}"}, "404": problem()}
            }},
            "/api/cases/{id}/reports/{report}/answer": {"get": {
                "summary": "The answer to the referral (form 027 answer, HL7 CDA R2) made when the report version was signed",
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "report", "in": "path", "required": true, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "application/hl7-cda+xml"}, "404": problem()}
            }},
            "/api/cases/{id}/reports/{report}/pdf": {"get": {
                "summary": "The printed report (PDF) of a signed report version, as the report object in the study carries it",
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "report", "in": "path", "required": true, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "application/pdf"}, "404": problem()}
            }},
            "/api/audit/search": {"post": {
                "summary": "Auditors and administrators: search the access audit by actor, patient, study, period and outcome (allowed or refused), newest first; a POST so that a searched personal code is never in a URL. The search is itself audited",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                    "actor": {"type": "string"}, "patient_id": {"type": "string"}, "study_uid": {"type": "string"},
                    "from": {"type": "string", "description": "RFC 3339 time or date YYYY-MM-DD"},
                    "to": {"type": "string", "description": "RFC 3339 time or date YYYY-MM-DD (to its end)"},
                    "outcome": {"type": "string", "enum": ["", "allowed", "refused"]},
                    "limit": {"type": "integer", "default": 1000, "maximum": 100000},
                    "format": {"type": "string", "enum": ["", "json", "csv"]}
                }, "additionalProperties": false}}}},
                "responses": {"200": {"description": "{\"events\": [...]} or text/csv"}, "400": problem(), "403": problem()}
            }},
            "/api/waveforms/{study}/{series}/{instance}": {"get": {
                "summary": "A DICOM waveform object's groups and channels, and a window of its samples in the channels' units: raw when they fit in `points`, else min/max pairs per span (Holter overview); and the annotations on that group within the window (events, measurements: label, start and end in seconds or null for the whole recording, channel labels). Reads only the headers and the window from the store",
                "parameters": [
                    {"name": "study", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "series", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "instance", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "group", "in": "query", "schema": {"type": "integer", "default": 0}},
                    {"name": "start", "in": "query", "schema": {"type": "number", "default": 0}, "description": "seconds from the start"},
                    {"name": "seconds", "in": "query", "schema": {"type": "number"}, "description": "length of the window; default: to the end"},
                    {"name": "points", "in": "query", "schema": {"type": "integer", "default": 2000, "maximum": 20000}}
                ],
                "responses": {"200": {"description": "{groups, group, start, samples, samples_per_point, mode: raw|minmax, values: [[...] per channel], annotations: [{label, start, end, channels}], annotations_total}"}, "400": problem(), "404": problem(), "422": problem()}
            }},
            "/api/users": {
                "get": {
                    "summary": "Administrators: every account (name, role, institution, full name, licence, disabled)",
                    "responses": {"200": {"description": "{\"users\": [...]}"}, "403": problem()}
                },
                "post": {
                    "summary": "Administrators: add an account; without a password it signs in with API tokens only",
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["name", "role"], "properties": {
                        "name": {"type": "string"}, "role": {"type": "string", "enum": ["clinic", "cardiologist", "auditor", "admin"]},
                        "institution": {"type": "string"}, "password": {"type": "string"},
                        "full_name": {"type": "string"}, "licence": {"type": "string"}
                    }, "additionalProperties": false}}}},
                    "responses": {"201": {"description": "{\"name\"}"}, "400": problem(), "403": problem(), "409": problem(), "422": problem()}
                }
            },
            "/api/users/{name}/disable": {"post": {
                "summary": "Administrators: disable an account (its sessions and tokens stop working)",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{\"name\", \"disabled\": true}"}, "403": problem(), "404": problem()}
            }},
            "/api/users/{name}/password": {"post": {
                "summary": "Administrators: set a new password for an account",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["password"], "properties": {"password": {"type": "string"}}, "additionalProperties": false}}}},
                "responses": {"204": {"description": "set"}, "400": problem(), "403": problem(), "404": problem(), "422": problem()}
            }},
            "/api/users/{name}/tokens": {"post": {
                "summary": "Administrators: issue an API token for an account; the token is in this answer only",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"label": {"type": "string"}, "valid_days": {"type": "integer"}}, "additionalProperties": false}}}},
                "responses": {"201": {"description": "{\"id\", \"user\", \"token\"}"}, "400": problem(), "403": problem(), "404": problem()}
            }},
            "/api/archive/overview": {"get": {
                "summary": "Auditors and administrators: studies, objects and bytes each clinic sent in a period",
                "parameters": [
                    {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time or date; default: the beginning"},
                    {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time or date (to its end); default: now"}
                ],
                "responses": {"200": {"description": "{\"from\", \"to\", \"clinics\": [{clinic_id, studies, objects, bytes}]}"}, "400": problem(), "403": problem()}
            }},
            "/api/fixity/failures": {"get": {
                "summary": "Auditors and administrators: stored objects whose last fixity check found them altered, missing or unreadable (never repaired silently), newest first",
                "responses": {"200": {"description": "{\"failures\": [{key, kind, study_uid, problem, expected_sha256, found_sha256, detail, found_at}]}"}, "403": problem()}
            }},
            "/api/fixity/report": {"get": {
                "summary": "Auditors and administrators: the fixity report over a period: objects and bytes checked, failures found with keys and hashes, failures standing, objects not checked, the background pass",
                "parameters": [
                    {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time or date (UTC); default: 30 days before `to`"},
                    {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time or date (to its end); default: now"},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv", "pdf"], "default": "json"}},
                    {"name": "lang", "in": "query", "schema": {"type": "string", "enum": ["lt", "en"], "default": "lt"}, "description": "language of the PDF"}
                ],
                "responses": {"200": {"description": "the report (JSON, CSV: one row per object to look at, or PDF)"}, "400": problem(), "403": problem()}
            }},
            "/api/indicators": {"get": {
                "summary": "Auditors and administrators: the quality indicators of a period (TC-01 … TC-08, TC-T1 … TC-T3, TC-V1) in total and per centre, clinic, kind and priority, with targets, exclusions and data-quality exceptions",
                "parameters": [
                    {"name": "period", "in": "query", "schema": {"type": "string"}, "description": "a year (2026), quarter (2026-Q3) or month (2026-11), cut in Vilnius"},
                    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "first day of a range, with `to`"},
                    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "last day of a range (included)"},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv", "fhir", "settlement"], "default": "json"}, "description": "settlement: CSV of the examinations read per centre, clinic and kind with their cases"},
                    {"name": "person_keys", "in": "query", "schema": {"type": "boolean", "default": false}, "description": "JSON: the keyed hashes of the persons counted, for pooling with another institution"}
                ],
                "responses": {"200": {"description": "the report (JSON; CSV one row per indicator and stratum; FHIR R4 Bundle of Measure and MeasureReport)"}, "400": problem(), "403": problem()}
            }},
            "/api/indicators/reports": {
                "get": {
                    "summary": "Auditors and administrators: the frozen indicator report versions (newest first), what each changed, and their deliveries to the quality platform",
                    "parameters": [{"name": "period", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "{reports: [{id, period, version, generated_at, changes, deliveries}]}"}, "403": problem()}
                },
                "post": {
                    "summary": "Administrators: freeze a period's report as a new immutable version (201), or answer the latest one when nothing changed (200)",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": false,
                        "properties": {"period": {"type": "string"}, "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"}}}}}},
                    "responses": {"200": {"description": "unchanged: the latest version"}, "201": {"description": "a new version"}, "400": problem(), "403": problem()}
                }
            },
            "/api/indicators/reports/{id}": {"get": {
                "summary": "Auditors and administrators: a frozen version exactly as stored (the report, or the FHIR Bundle as delivered)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                               {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "fhir"], "default": "json"}}],
                "responses": {"200": {"description": "the stored report or bundle"}, "400": problem(), "403": problem(), "404": problem()}
            }},
            "/api/indicators/reports/{id}/deliver": {"post": {
                "summary": "Administrators: queue delivery of a frozen version to the quality platform (retried with backoff; Idempotency-Key is the version's id)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"202": {"description": "queued: {delivery, status, target}"}, "403": problem(), "404": problem(), "409": problem()}
            }},
            "/api/audit/chain": {"get": {
                "summary": "Auditors and administrators: walk the tamper-evident audit trail from its first event and check every signed head; names the first event where it breaks",
                "responses": {"200": {"description": "{intact, events, last_seq, last_hash, signed_heads, last_signed_head, broken: {seq, kind: edited|missing|reordered|inserted|signed_head, detail} | null, warnings}"}, "403": problem()}
            }},
            "/api/audit/fhir": {"get": {
                "summary": "Auditors and administrators: the audit trail as a FHIR R4 Bundle of AuditEvent resources (DICOM event codes, chain position and hash in an extension), in chain order, a page at a time",
                "parameters": [
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}, "description": "events after this chain position (the last seq of the previous page)"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}}
                ],
                "responses": {"200": {"description": "a FHIR R4 Bundle (application/fhir+json)"}, "400": problem(), "403": problem()}
            }},
            "/api/retention/studies/{uid}": {"get": {
                "summary": "Auditors and administrators: a study's retention date (received + the years of each kind, or a later extension), each stored object's date, legal holds (open and released), extensions and deletion requests",
                "parameters": [{"name": "uid", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{study_uid, retain_until, expired, open_holds, deletable, objects: [{kind, key, sha256, received_at, retain_until}], extensions, holds, deletion_requests}"}, "403": problem(), "404": problem(), "422": problem()}
            }},
            "/api/retention/studies/{uid}/holds": {"post": {
                "summary": "Administrators: place a legal hold on a study (several may stand); nothing of it is deleted while one stands",
                "parameters": [{"name": "uid", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["reason"], "additionalProperties": false, "properties": {"reason": {"type": "string", "minLength": 1}}}}}},
                "responses": {"201": {"description": "the hold"}, "400": problem(), "403": problem(), "404": problem(), "422": problem()}
            }},
            "/api/retention/studies/{uid}/extend": {"post": {
                "summary": "Administrators: keep a study until a later day; a day before the date in force is refused (a retention date is never shortened)",
                "parameters": [{"name": "uid", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["until", "reason"], "additionalProperties": false, "properties": {"until": {"type": "string", "format": "date"}, "reason": {"type": "string", "minLength": 1}}}}}},
                "responses": {"200": {"description": "the study's retention as it now stands"}, "400": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/retention/holds/{id}/release": {"post": {
                "summary": "Administrators: release a legal hold, with a reason; the hold stays on record",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["reason"], "additionalProperties": false, "properties": {"reason": {"type": "string", "minLength": 1}}}}}},
                "responses": {"200": {"description": "the released hold"}, "400": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/retention/expiring": {"get": {
                "summary": "Auditors and administrators: the daily list of studies whose retention ends within retention.notice_days (default 90), those past it included",
                "responses": {"200": {"description": "{day, days, studies: [{study_uid, retain_until, objects, held}]}"}, "403": problem()}
            }},
            "/api/retention/deletions": {
                "post": {
                    "summary": "Administrators: propose deleting a study past its retention date and under no hold; an auditor then approves or rejects. 409 says until when it is kept, or which holds stand",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["study_uid", "reason"], "additionalProperties": false, "properties": {"study_uid": {"type": "string"}, "reason": {"type": "string", "minLength": 1}}}}}},
                    "responses": {"201": {"description": "the request"}, "400": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()}
                },
                "get": {
                    "summary": "Auditors and administrators: deletion requests, newest first",
                    "parameters": [{"name": "state", "in": "query", "schema": {"type": "string", "enum": ["proposed", "rejected", "approved", "done"]}}],
                    "responses": {"200": {"description": "{\"requests\": [...]}"}, "400": problem(), "403": problem()}
                }
            },
            "/api/retention/deletions/{id}/approve": {"post": {
                "summary": "Auditors: approve a proposed deletion. Every check is made again; the study's index rows become tombstones (what, hashes, who proposed and approved, when, why; kept forever, also as a record in the store) and its objects are removed",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"note": {"type": "string"}}}}}},
                "responses": {"200": {"description": "{request, tombstones, left_in_store}"}, "400": problem(), "403": problem(), "404": problem(), "409": problem()}
            }},
            "/api/retention/deletions/{id}/reject": {"post": {
                "summary": "Auditors: reject a proposed deletion, with a note",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["note"], "additionalProperties": false, "properties": {"note": {"type": "string", "minLength": 1}}}}}},
                "responses": {"200": {"description": "the request, rejected"}, "400": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/retention/tombstones": {"get": {
                "summary": "Auditors and administrators: what deletions removed, kept forever",
                "parameters": [{"name": "study", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{\"tombstones\": [{object_key, request_id, kind, study_uid, sha256, bytes, received_at, retain_until, reason, proposed_by, proposed_at, approved_by, approved_at, removed_at}]}"}, "400": problem(), "403": problem()}
            }},
            "/api/reports": {"get": {
                "summary": "Pull delivery: signed report versions since a time that the caller may see (a clinic its own cases'), oldest first, with the address of each answer document; a clinic fetching an answer is its delivery",
                "parameters": [
                    {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 time or a date YYYY-MM-DD (UTC); default: all"},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 1000, "maximum": 10000}}
                ],
                "responses": {"200": {"description": "{\"reports\": [...]}"}, "400": problem()}
            }},
            "/api/cases/{id}/deliveries": {"get": {
                "summary": "Delivery status of the case's reports per channel (dicom: C-STORE to the clinic's PACS; hl7: ORU^R01 to its HIS; pull: fetched from the API): pending with attempts and the next attempt, delivered at, or failed with the reason",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{\"case_id\": id, \"deliveries\": [...]}"}, "404": problem()}
            }},
            "/api/deliveries": {"get": {
                "summary": "Deliveries by status, newest first: a clinic its own, administrators and auditors all (status=failed: what needs an administrator)",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["pending", "delivered", "failed", "superseded"]}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 500, "maximum": 10000}}
                ],
                "responses": {"200": {"description": "{\"deliveries\": [...]}"}, "400": problem(), "403": problem(), "422": problem()}
            }},
            "/api/deliveries/{id}/retry": {"post": {
                "summary": "Administrators: put a failed delivery back in the queue, due now, attempts counted afresh (journaled, audited)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The delivery, pending"}, "403": problem(), "404": problem(), "409": problem()}
            }},
            "/api/cases/{id}/reports/{report}/deliveries": {"post": {
                "summary": "Administrators: queue a signed report version again on one of the clinic's push channels (journaled, audited)",
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "report", "in": "path", "required": true, "schema": {"type": "string"}}
                ],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["channel"], "additionalProperties": false,
                    "properties": {"channel": {"type": "string", "enum": ["dicom", "hl7"]}}
                }}}},
                "responses": {"202": {"description": "The new delivery, pending"}, "400": problem(), "403": problem(), "404": problem(), "422": problem()}
            }},
            "/api/cases/{id}/release": {"post": {
                "summary": "The claiming reader gives the case back to the worklist",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The case, new again"}, "404": problem(), "409": problem()}
            }},
            "/api/cases/{id}/cancel": {"post": {
                "summary": "Withdraw a case not yet reported (a clinic its own, administrators any), with the reason: it leaves the worklists and the indicators, where it is counted as excluded (audited, journaled)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["reason"], "additionalProperties": false,
                    "properties": {"reason": {"type": "string"}}}}}},
                "responses": {"200": {"description": "The case, cancelled"}, "400": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/cases/{id}/route": {"post": {
                "summary": "Administrators: route an open or unrouted case to a centre with a contract for its clinic (and a reader, or the shared worklist), with the reason (audited, journaled)",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["centre", "reason"],
                    "properties": {"centre": {"type": "string"}, "reader": {"type": "string"}, "reason": {"type": "string"}}
                }}}},
                "responses": {"200": {"description": "The case"}, "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/studies/{uid}/route": {"post": {
                "summary": "Administrators: route a study without a referral by the rules, with the reason (audited, journaled)",
                "parameters": [{"name": "uid", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}
                }}}},
                "responses": {"200": {"description": "The new case (unrouted when no rule matches)"}, "403": problem(), "404": problem(), "409": problem(), "422": problem()}
            }},
            "/api/readers/{name}/availability": {"put": {
                "summary": "A reader marks themself away (skipped by automatic assignment) or back; administrators for anyone",
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["away"], "properties": {"away": {"type": "boolean"}}
                }}}},
                "responses": {"200": {"description": "{\"reader\": name, \"away\": bool}"}, "400": problem(), "403": problem()}
            }},
            "/healthz": {"get": {
                "summary": "Whether the index and the object store answer",
                "security": [],
                "responses": {"200": {"description": "Healthy"}, "503": {"description": "Degraded"}}
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (loopback, or with the scrape token)",
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "OpenMetrics text"}, "401": problem()}
            }}
        }
    });
    super::holter::describe(&mut spec);
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON API's routes (kept in step with `web::router`).
    const ROUTES: &[(&str, &str)] = &[
        ("post", "/api/login"),
        ("post", "/api/logout"),
        ("get", "/api/me"),
        ("get", "/api/openapi.json"),
        ("post", "/api/referrals"),
        ("get", "/api/referrals"),
        ("get", "/api/referrals/{id}"),
        ("get", "/api/referrals/{id}/journal"),
        ("get", "/api/journal"),
        ("get", "/api/worklist"),
        ("get", "/api/cases/{id}"),
        ("post", "/api/cases/{id}/claim"),
        ("post", "/api/cases/{id}/release"),
        ("put", "/api/cases/{id}/report"),
        ("post", "/api/cases/{id}/report/sign"),
        ("get", "/api/cases/{id}/reports"),
        ("get", "/api/reports"),
        ("get", "/api/cases/{id}/reports/{report}/answer"),
        ("get", "/api/cases/{id}/reports/{report}/pdf"),
        ("post", "/api/audit/search"),
        ("get", "/api/archive/overview"),
        ("get", "/api/fixity/failures"),
        ("get", "/api/fixity/report"),
        ("get", "/api/indicators"),
        ("get", "/api/indicators/reports"),
        ("post", "/api/indicators/reports"),
        ("get", "/api/indicators/reports/{id}"),
        ("post", "/api/indicators/reports/{id}/deliver"),
        ("get", "/api/audit/chain"),
        ("get", "/api/audit/fhir"),
        ("get", "/api/retention/studies/{uid}"),
        ("post", "/api/retention/studies/{uid}/holds"),
        ("post", "/api/retention/studies/{uid}/extend"),
        ("post", "/api/retention/holds/{id}/release"),
        ("get", "/api/retention/expiring"),
        ("post", "/api/retention/deletions"),
        ("get", "/api/retention/deletions"),
        ("post", "/api/retention/deletions/{id}/approve"),
        ("post", "/api/retention/deletions/{id}/reject"),
        ("get", "/api/retention/tombstones"),
        ("get", "/api/users"),
        ("post", "/api/users"),
        ("post", "/api/users/{name}/disable"),
        ("post", "/api/users/{name}/password"),
        ("post", "/api/users/{name}/tokens"),
        ("get", "/api/waveforms/{study}/{series}/{instance}"),
        ("post", "/api/cases/{id}/route"),
        ("post", "/api/cases/{id}/cancel"),
        ("get", "/api/cases/{id}/deliveries"),
        ("get", "/api/deliveries"),
        ("post", "/api/deliveries/{id}/retry"),
        ("post", "/api/cases/{id}/reports/{report}/deliveries"),
        ("post", "/api/studies/{uid}/route"),
        ("put", "/api/readers/{name}/availability"),
        ("get", "/api/link-exceptions"),
        ("post", "/api/link-exceptions/{id}/resolve"),
        ("post", "/api/referrals/{id}/unlink"),
        ("get", "/api/studies/unlinked"),
        ("get", "/api/ownership-refusals"),
        ("post", "/api/holter"),
        ("get", "/api/holter/{series}"),
        ("get", "/api/holter/{series}/original"),
        ("get", "/healthz"),
        ("get", "/metrics"),
    ];

    #[test]
    fn every_route_is_documented() {
        let spec = spec();
        for (method, path) in ROUTES {
            assert!(
                spec["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
}
