//! What the archive accepts, whatever the edge: the storage SOP classes of telecardiology and
//! the transfer syntaxes cardiac modalities really send.

/// Storage SOP classes accepted without configuration.
const CARDIOLOGY_STORAGE: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.6.1",   // Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",   // Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.6.2",   // Enhanced US Volume
    "1.2.840.10008.5.1.4.1.1.6",     // Ultrasound Image (retired), older modalities
    "1.2.840.10008.5.1.4.1.1.3",     // Ultrasound Multi-frame Image (retired)
    "1.2.840.10008.5.1.4.1.1.9.1.1", // 12-lead ECG Waveform
    "1.2.840.10008.5.1.4.1.1.9.1.2", // General ECG Waveform
    "1.2.840.10008.5.1.4.1.1.9.1.3", // Ambulatory ECG Waveform (Holter)
    "1.2.840.10008.5.1.4.1.1.104.1", // Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.104.2", // Encapsulated CDA
    "1.2.840.10008.5.1.4.1.1.88.11", // Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33", // Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59", // Key Object Selection
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.66",    // Raw Data (original vendor files)
];

/// Transfer syntaxes accepted for storage, stored as received (no transcoding).
/// Order matters: the first one a caller proposes that is in this list wins.
pub const TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.1",     // Explicit VR Little Endian
    "1.2.840.10008.1.2",       // Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  // Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50",  // JPEG Baseline
    "1.2.840.10008.1.2.4.51",  // JPEG Extended
    "1.2.840.10008.1.2.4.57",  // JPEG Lossless
    "1.2.840.10008.1.2.4.70",  // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  // JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  // JPEG 2000
    "1.2.840.10008.1.2.4.201", // HTJ2K Lossless
    "1.2.840.10008.1.2.4.202", // HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203", // HTJ2K
    "1.2.840.10008.1.2.5",     // RLE Lossless
    "1.2.840.10008.1.2.4.100", // MPEG-2 MP@ML
    "1.2.840.10008.1.2.4.101", // MPEG-2 MP@HL
    "1.2.840.10008.1.2.4.102", // MPEG-4 AVC/H.264 HP@4.1
    "1.2.840.10008.1.2.4.103", // MPEG-4 AVC/H.264 BD-compatible
    "1.2.840.10008.1.2.4.104", // MPEG-4 AVC/H.264 HP@4.2 2D
    "1.2.840.10008.1.2.4.105", // MPEG-4 AVC/H.264 HP@4.2 3D
    "1.2.840.10008.1.2.4.106", // MPEG-4 AVC/H.264 Stereo HP@4.2
    "1.2.840.10008.1.2.4.107", // HEVC/H.265 Main
    "1.2.840.10008.1.2.4.108", // HEVC/H.265 Main 10
];

/// The storage SOP classes we accept: the built-in set plus `dicom.extra_sop_classes`.
pub fn storage_sop_classes(extra: &[String]) -> Vec<String> {
    let mut all: Vec<String> = CARDIOLOGY_STORAGE.iter().map(|s| s.to_string()).collect();
    for uid in extra {
        if !all.contains(uid) {
            all.push(uid.clone());
        }
    }
    all
}

/// Whether an object of this class in this transfer syntax may be stored.
pub fn accepts(extra: &[String], sop_class_uid: &str, transfer_syntax: &str) -> bool {
    TRANSFER_SYNTAXES.contains(&transfer_syntax)
        && storage_sop_classes(extra)
            .iter()
            .any(|c| c == sop_class_uid)
}
