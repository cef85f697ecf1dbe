//! Quality indicators: turnaround and volume computed from the case clocks, in the shape the
//! national quality platform takes (P / B × 100 over a calendar period, medians against a
//! target), per consulting centre, sending clinic, kind and priority.
//!
//! The pieces that do not touch the index: reporting periods cut in Vilnius ([`period`]),
//! Lithuania's business days ([`calendar`]), contract targets ([`targets`]), exact order
//! statistics ([`stats`]), persons keyed without their codes ([`persons`]) and the definitions
//! as data ([`definitions`]). [`report`] reads the index and computes a period's report;
//! [`csv`] and [`fhir`] export it.

pub mod calendar;
pub mod compute;
pub mod csv;
pub mod dashboard;
pub mod definitions;
pub mod export;
mod facts;
pub mod fhir;
pub mod period;
pub mod persons;
pub mod report;
pub mod stats;
pub mod targets;
pub mod yearly;

pub use period::Period;
pub use report::{Indicators, Report};

#[derive(Debug, thiserror::Error)]
pub enum IndicatorError {
    #[error("{0}")]
    Period(String),
    #[error("indicator definitions: {0}")]
    Definitions(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("object store: {0}")]
    Store(String),
    #[error("format {0}")]
    Format(String),
    #[error("person secret: {0}")]
    Secret(String),
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
}

impl IndicatorError {
    pub fn fault(&self) -> crate::fault::Fault {
        match self {
            IndicatorError::Period(_) | IndicatorError::Format(_) => crate::fault::Fault::BadInput,
            IndicatorError::Definitions(_) | IndicatorError::Secret(_) => crate::fault::Fault::Bug,
            IndicatorError::NotFound(_) => crate::fault::Fault::NotFound,
            IndicatorError::Conflict(_) => crate::fault::Fault::Conflict,
            IndicatorError::Index(_) | IndicatorError::Store(_) => crate::fault::Fault::Unavailable,
        }
    }
}
