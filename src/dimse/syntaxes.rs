//! What we negotiate: verification, the query/retrieve models, and the storage SOP classes and
//! transfer syntaxes ingest accepts.

pub const VERIFICATION: &str = "1.2.840.10008.1.1";

pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

/// Query/Retrieve information models we serve (PS3.4 C.6).
pub const QUERY_RETRIEVE: &[&str] = &[
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_MOVE,
    PATIENT_ROOT_GET,
    STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
    STUDY_ROOT_GET,
];
pub const MOVE_MODELS: &[&str] = &[PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE];
pub const GET_MODELS: &[&str] = &[PATIENT_ROOT_GET, STUDY_ROOT_GET];

pub use crate::ingest::accepted::{storage_sop_classes, TRANSFER_SYNTAXES};
