//! telecardio: receives cardiology examinations and referrals from clinics, routes them to
//! consulting cardiologists, returns signed reports, and keeps everything for 15 years.
//!
//! Dependencies point one way: edges (`dimse`, `web`) → domain (`ingest`, `catalog`, `query`,
//! `access`) → storage (`archive`, `index`, reached through `audit` for the audit trail).
// The OpenAPI description is one serde_json::json! literal, deeper than the default limit.
#![recursion_limit = "256"]

/// Who is asking: principals, roles, permissions and the scope of what they see.
pub mod access;
/// Local accounts, API tokens, sessions and identity-provider JWTs: proving who a caller is.
pub mod accounts;
/// Object store: immutable, create-only objects and their key layout.
pub mod archive;
/// The append-only, hash-chained audit trail and its signed heads.
pub mod audit;
/// Backup to a second object store and restore from it.
pub mod backup;
/// The one scoped, audited door to stored patient data for every reader.
pub mod catalog;
/// Command-line presentation of the index (tables and JSON for administrators).
pub mod cli;
/// Typed configuration, loaded and validated once.
pub mod config;
/// Delivery of signed reports to clinics' PACS and HIS: the durable queue's worker.
pub mod delivery;
/// DICOMweb edge: QIDO-RS, WADO-RS, STOW-RS under /dicom-web.
pub mod dicomweb;
/// DICOM network edge: association policy, C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET.
pub mod dimse;
/// The protocol-neutral classification every error maps to.
pub mod fault;
/// Fixity: every stored object read back and compared with the hash recorded on arrival.
pub mod fixity;
/// HL7 v2 edge: MLLP listener for HIS orders and patient maintenance, with ACKs.
pub mod hl7;
/// Holter recordings in recorders' own formats (ISHNE 1.0, EDF/EDF+): checked, streaming readers.
pub mod holter;
/// SQL index of patients, studies, series, instances and audit events (SQLite and PostgreSQL).
pub mod index;
/// Quality indicators from the case clocks: periods, business days, targets, definitions.
pub mod indicators;
/// Receiving one object: scan, hash, store durably, index.
pub mod ingest;
/// Prometheus metrics.
pub mod metrics;
/// Pages for people in a browser (Lithuanian and English): clinics, cardiologists, auditors.
pub mod pages;
/// Patient maintenance from clinics' HIS: demographics updates and merges.
pub mod patients;
/// Pixel data of stored objects: frames located by headers, bulk data, rendering.
pub mod pixels;
/// The DICOM query model shared by C-FIND and QIDO-RS.
pub mod query;
/// Referrals (form 027, HL7 CDA): reading, validating, keeping and journaling them.
pub mod referral;
/// Reports: drafting, signing (frozen in the store) and amending a case's description.
pub mod reports;
/// How long everything is kept: retention dates, legal holds, two-person deletion, tombstones.
pub mod retention;
/// The reading workflow: routing cases to centres and readers, worklists and claims.
pub mod routing;
/// Service wiring and graceful shutdown.
pub mod server;

pub mod slots;
/// Deterministic generator of realistic test objects and benchmark corpora.
pub mod synth;
/// rustls server configuration shared by the DICOM and HTTP edges.
pub mod tls;
/// HTTP edge: health, metrics, and later the API.
pub mod web;
