//! The one question every error answers for the edges: whose fault, and is a retry worth it.
//!
//! Each module's error type maps itself to a [`Fault`]; each edge (DIMSE status, HTTP problem,
//! HL7 ACK) maps a `Fault` to its protocol in exactly one function.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The input is wrong; the same input will fail again.
    BadInput,
    /// The thing asked for does not exist (or is not visible to the asker).
    NotFound,
    /// The asker may not do this.
    Forbidden,
    /// What it names is in a state that forbids it (kept until a date, under a legal hold,
    /// already decided); it may pass once that state changes.
    Conflict,
    /// Something we depend on failed; the same request may succeed later.
    Unavailable,
    /// Our own defect.
    Bug,
}
