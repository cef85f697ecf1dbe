//! Quality indicators: turnaround and volume computed from the case clocks, in the shape the
//! national quality platform takes (P / B × 100 over a calendar period, medians against a
//! target), per consulting centre, sending clinic, kind and priority.
//!
//! The pieces that do not touch the index: reporting periods cut in Vilnius ([`period`]),
//! Lithuania's business days ([`calendar`]), contract targets ([`targets`]), exact order
//! statistics ([`stats`]), persons keyed without their codes ([`persons`]) and the definitions
//! as data ([`definitions`]).

pub mod calendar;
pub mod compute;
pub mod definitions;
pub mod period;
pub mod persons;
pub mod stats;
pub mod targets;

#[derive(Debug, thiserror::Error)]
pub enum IndicatorError {
    #[error("{0}")]
    Period(String),
    #[error("indicator definitions: {0}")]
    Definitions(String),
}
