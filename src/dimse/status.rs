//! The one mapping from domain faults to DIMSE statuses for query and retrieve requests.

use crate::catalog::CatalogError;
use crate::fault::Fault;

/// Status for a catalog failure (PS3.4 C.4.1.1.4, C.4.2.1.5; PS3.7 C.5).
pub fn of_catalog(e: &CatalogError) -> u16 {
    match e.fault() {
        // Identifier does not match SOP Class.
        Fault::BadInput => 0xA900,
        // No such data within the caller's scope: unable to process, with a comment.
        Fault::NotFound => 0xC000,
        // Refused: not authorized.
        Fault::Forbidden => 0x0124,
        // Unable to process, with a comment saying what stands in the way.
        Fault::Conflict => 0xC000,
        // Refused: out of resources.
        Fault::Unavailable => 0xA700,
        Fault::Bug => 0xC001,
    }
}
