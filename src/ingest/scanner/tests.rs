use super::*;

/// Explicit VR little endian element.
fn el(t: Tag, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&((t & 0xFFFF) as u16).to_le_bytes());
    out.extend_from_slice(vr);
    if has_long_length(*vr) {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
    out
}

/// Implicit VR little endian element.
fn iel(t: Tag, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&((t & 0xFFFF) as u16).to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn raw_header(t: Tag, len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&((t & 0xFFFF) as u16).to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out
}

fn explicit_header(t: Tag, vr: &[u8; 2], len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
    out.extend_from_slice(&((t & 0xFFFF) as u16).to_le_bytes());
    out.extend_from_slice(vr);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&len.to_le_bytes());
    out
}

const PATIENT_ID: Tag = tag(0x0010, 0x0020);
const ISSUER: Tag = tag(0x0010, 0x0021);
const SOP_INSTANCE_UID: Tag = tag(0x0008, 0x0018);

fn wanted(t: Tag) -> bool {
    matches!(t, PATIENT_ID | SOP_INSTANCE_UID)
}

/// A data set with a nested undefined-length sequence, the Other Patient IDs sequence and
/// encapsulated pixel data (the shapes real objects have), as its top-level elements.
fn sample_parts() -> Vec<Vec<u8>> {
    let mut parts = vec![el(SOP_INSTANCE_UID, b"UI", b"1.2.3\0")];
    // An unrelated sequence of undefined length with an item of undefined length.
    let mut d = explicit_header(tag(0x0008, 0x1140), b"SQ", UNDEFINED);
    d.extend(raw_header(ITEM, UNDEFINED));
    d.extend(el(tag(0x0008, 0x1150), b"UI", b"1.2\0"));
    d.extend(el(PATIENT_ID, b"LO", b"NOT-THIS"));
    d.extend(raw_header(ITEM_DELIMITATION, 0));
    d.extend(raw_header(SEQUENCE_DELIMITATION, 0));
    parts.push(d);
    parts.push(el(PATIENT_ID, b"LO", b"39001010000 "));
    // Other Patient IDs: a defined-length sequence with one defined-length item.
    let mut item = el(PATIENT_ID, b"LO", b"DIK-77");
    item.extend(el(ISSUER, b"LO", b"LT-DIK"));
    let mut seq = raw_header(ITEM, item.len() as u32);
    seq.extend(item);
    let mut d = explicit_header(OTHER_PATIENT_IDS_SEQUENCE, b"SQ", seq.len() as u32);
    d.extend(seq);
    parts.push(d);
    // Encapsulated pixel data: offset table and two fragments.
    let mut d = explicit_header(PIXEL_DATA, b"OB", UNDEFINED);
    d.extend(raw_header(ITEM, 0));
    d.extend(raw_header(ITEM, 4));
    d.extend([1, 2, 3, 4]);
    d.extend(raw_header(ITEM, 2));
    d.extend([5, 6]);
    d.extend(raw_header(SEQUENCE_DELIMITATION, 0));
    parts.push(d);
    parts
}

fn sample() -> Vec<u8> {
    sample_parts().concat()
}

fn scan_in_chunks(data: &[u8], chunk: usize) -> Result<Kept, ScanError> {
    let mut s = Scanner::new(true, false, wanted);
    for part in data.chunks(chunk) {
        s.feed(part)?;
    }
    s.finish()
}

#[test]
fn keeps_top_level_and_nested_values_whatever_the_fragmentation() {
    let data = sample();
    for chunk in [1, 3, 7, 64, data.len()] {
        let kept = scan_in_chunks(&data, chunk).unwrap();
        assert_eq!(kept.top[&PATIENT_ID], b"39001010000 ", "chunk {chunk}");
        assert_eq!(kept.top[&SOP_INSTANCE_UID], b"1.2.3\0");
        let nested: Vec<_> = kept
            .nested
            .iter()
            .map(|v| (v.sequence, v.item, v.tag, v.value.clone()))
            .collect();
        assert_eq!(
            nested,
            vec![
                (
                    OTHER_PATIENT_IDS_SEQUENCE,
                    1,
                    PATIENT_ID,
                    b"DIK-77".to_vec()
                ),
                (OTHER_PATIENT_IDS_SEQUENCE, 1, ISSUER, b"LT-DIK".to_vec()),
            ]
        );
    }
}

#[test]
fn every_cut_inside_an_element_is_detected() {
    let data = sample();
    let boundaries: Vec<usize> = sample_parts()
        .iter()
        .scan(0, |end, part| {
            *end += part.len();
            Some(*end)
        })
        .collect();
    for cut in 1..data.len() {
        let accepted = scan_in_chunks(&data[..cut], 5).is_ok();
        assert_eq!(accepted, boundaries.contains(&cut), "cut at byte {cut}");
    }
}

#[test]
fn value_length_past_the_end_is_truncation() {
    let mut d = el(SOP_INSTANCE_UID, b"UI", b"1.2.3\0");
    d.extend(explicit_header(tag(0x0042, 0x0011), b"OB", 1_000_000));
    d.extend([0u8; 100]);
    let err = scan_in_chunks(&d, 16).unwrap_err();
    assert!(matches!(err, ScanError::Truncated(_)), "{err}");
}

#[test]
fn element_overrunning_its_item_is_refused() {
    let mut item = el(PATIENT_ID, b"LO", b"ABCDEFGH");
    item.truncate(item.len() - 4);
    let mut seq = raw_header(ITEM, item.len() as u32);
    seq.extend(item);
    let mut d = explicit_header(OTHER_PATIENT_IDS_SEQUENCE, b"SQ", seq.len() as u32);
    d.extend(seq);
    d.extend(el(SOP_INSTANCE_UID, b"UI", b"1.2.3\0"));
    let err = scan_in_chunks(&d, 1).unwrap_err();
    assert!(matches!(err, ScanError::Overrun { .. }), "{err}");
}

#[test]
fn stray_delimiters_are_refused() {
    let mut d = el(SOP_INSTANCE_UID, b"UI", b"1.2.3\0");
    d.extend(raw_header(SEQUENCE_DELIMITATION, 0));
    assert!(matches!(
        scan_in_chunks(&d, 4).unwrap_err(),
        ScanError::Unexpected { .. }
    ));
    let d = raw_header(ITEM, 4);
    assert!(scan_in_chunks(&d, 4).is_err());
}

#[test]
fn unclosed_sequence_is_truncation() {
    let mut d = explicit_header(tag(0x0008, 0x1140), b"SQ", UNDEFINED);
    d.extend(raw_header(ITEM, UNDEFINED));
    d.extend(el(tag(0x0008, 0x1150), b"UI", b"1.2\0"));
    let err = scan_in_chunks(&d, 3).unwrap_err();
    assert!(matches!(err, ScanError::Truncated(_)), "{err}");
}

#[test]
fn implicit_vr_with_undefined_length_sequences() {
    let mut d = iel(SOP_INSTANCE_UID, b"1.2.3\0");
    d.extend(raw_header(tag(0x0008, 0x1140), UNDEFINED));
    d.extend(raw_header(ITEM, UNDEFINED));
    d.extend(iel(tag(0x0008, 0x1150), b"1.2\0"));
    d.extend(raw_header(ITEM_DELIMITATION, 0));
    d.extend(raw_header(SEQUENCE_DELIMITATION, 0));
    d.extend(iel(PATIENT_ID, b"P1"));
    d.extend(iel(PIXEL_DATA, &[0u8; 64]));
    let mut s = Scanner::new(false, false, wanted);
    for part in d.chunks(5) {
        s.feed(part).unwrap();
    }
    let kept = s.finish().unwrap();
    assert_eq!(kept.top[&PATIENT_ID], b"P1");
}

#[test]
fn deflated_data_sets_are_inflated_for_scanning() {
    use std::io::Write;
    let data = sample();
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&data).unwrap();
    let deflated = enc.finish().unwrap();
    let mut s = Scanner::new(true, true, wanted);
    for part in deflated.chunks(7) {
        s.feed(part).unwrap();
    }
    let kept = s.finish().unwrap();
    assert_eq!(kept.top[&PATIENT_ID], b"39001010000 ");

    let mut s = Scanner::new(true, true, wanted);
    s.feed(&deflated[..deflated.len() / 2]).unwrap();
    assert!(s.finish().is_err());
}

#[test]
fn large_values_are_skipped_not_kept() {
    let big = vec![b'A'; (MAX_KEPT + 10) as usize];
    let mut d = el(PATIENT_ID, b"UN", &big);
    d.extend(el(SOP_INSTANCE_UID, b"UI", b"1.2.3\0"));
    let kept = scan_in_chunks(&d, 1000).unwrap();
    assert!(!kept.top.contains_key(&PATIENT_ID));
    assert!(kept.top.contains_key(&SOP_INSTANCE_UID));
}

#[test]
fn element_declaring_more_than_the_limit_is_refused_at_once() {
    let mut d = el(SOP_INSTANCE_UID, b"UI", b"1.2.3\0");
    d.extend(explicit_header(tag(0x0042, 0x0011), b"OB", 4096));
    let mut s = Scanner::new(true, false, wanted).with_limit(1024);
    let err = s.feed(&d).unwrap_err();
    assert!(
        matches!(err, ScanError::Oversize { len: 4096, .. }),
        "{err}"
    );
}
