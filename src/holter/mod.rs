//! Holter recordings as recorders export them, before they become DICOM: the vendor-neutral
//! ISHNE 1.0 format ([`ishne`]) and EDF/EDF+ ([`edf`]). A reader checks everything a file claims against what it
//! holds (magic, header CRC, sizes, leads, resolutions, dates) and then hands the samples out a
//! block at a time, so a 48-hour recording never sits whole in memory.

pub mod annotations;
pub mod copy;
pub mod dicom;
pub mod edf;
pub mod import;
pub mod inbox;
pub mod ishne;
pub mod originals;
mod plan;
pub mod recording;
mod stream;
pub mod tal;

pub use import::{Holter, ImportError, Imported, Target, Upload};

/// Why a recording was refused: each names the field at fault, as a person fixing the export
/// needs it.
#[derive(Debug, thiserror::Error)]
pub enum HolterError {
    #[error("not an ISHNE 1.0 file: the first 8 bytes are {0:?}, not \"ISHNE1.0\"")]
    Magic(String),
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
    #[error("header CRC: the file says {stored:#06x}, the header computes to {computed:#06x}")]
    Crc { stored: u16, computed: u16 },
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("reading the recording: {0}")]
    Io(#[from] std::io::Error),
}

impl HolterError {
    fn field(field: &'static str, problem: impl Into<String>) -> HolterError {
        HolterError::Field {
            field,
            problem: problem.into(),
        }
    }
}

/// Where a lead's electrodes sit, as a recorder names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadSite {
    Unknown,
    GenericBipolar,
    /// X, Y, Z orthogonal bipolar leads.
    Orthogonal(char),
    /// Limb leads I, II, III, aVR, aVL, aVF.
    Limb(&'static str),
    /// Precordial leads V1 … V6.
    Precordial(u8),
    /// Holter bipolar leads ES, AS, AI.
    HolterBipolar(&'static str),
}

impl LeadSite {
    /// A short label: `II`, `V5`, `ES`, `X`, `bipolar`, `unknown`.
    pub fn label(&self) -> String {
        match self {
            LeadSite::Unknown => "unknown".into(),
            LeadSite::GenericBipolar => "bipolar".into(),
            LeadSite::Orthogonal(c) => c.to_string(),
            LeadSite::Limb(name) | LeadSite::HolterBipolar(name) => (*name).into(),
            LeadSite::Precordial(n) => format!("V{n}"),
        }
    }
}

/// One recorded lead: where it sits and what one unit of a sample is worth.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    pub site: LeadSite,
    /// The recorder's own code for the site (ISHNE lead specification).
    pub code: i16,
    /// Nanovolts per sample unit.
    pub resolution_nv: u32,
    /// The recorder's quality code for the lead, as given.
    pub quality: i16,
}

/// Where a recording's samples come from, a block of instants at a time: each instant one
/// sample per channel, interleaved.
pub trait Instants {
    /// Up to `max` instants into `out` (replacing what it held); how many, 0 at the end.
    fn next_instants(&mut self, max: usize, out: &mut Vec<i16>) -> Result<usize, HolterError>;
}

/// The sample value that marks a lead fault (electrode off, saturation): never a voltage.
pub const LEAD_FAULT: i16 = i16::MIN;
