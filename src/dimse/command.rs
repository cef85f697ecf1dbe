//! DIMSE command sets (PS3.7 9.3, 10.3): reading requests and writing responses.
//!
//! Command sets are always implicit VR little endian and small, so they are parsed whole with
//! dicom-object; data sets never pass through here.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_CANCEL_RQ: u16 = 0x0FFF;
/// Command Data Set Type value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("command set cannot be parsed: {0}")]
    Parse(String),
    #[error("command set lacks {0}")]
    Missing(&'static str),
}

/// The fields of a request we act on.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub command_field: u16,
    pub message_id: u16,
    pub affected_sop_class_uid: String,
    pub affected_sop_instance_uid: String,
    pub has_data_set: bool,
}

impl Request {
    pub fn parse(bytes: &[u8]) -> Result<Request, CommandError> {
        let obj =
            InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .map_err(|e| CommandError::Parse(e.to_string()))?;
        let u16_of = |tag, name| {
            obj.element(tag)
                .ok()
                .and_then(|e| e.to_int::<u16>().ok())
                .ok_or(CommandError::Missing(name))
        };
        let text_of = |tag| {
            obj.element(tag)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        let command_field = u16_of(tags::COMMAND_FIELD, "Command Field (0000,0100)")?;
        let message_id = if command_field == C_CANCEL_RQ {
            u16_of(
                tags::MESSAGE_ID_BEING_RESPONDED_TO,
                "Message ID Being Responded To (0000,0120)",
            )?
        } else {
            u16_of(tags::MESSAGE_ID, "Message ID (0000,0110)")?
        };
        Ok(Request {
            command_field,
            message_id,
            affected_sop_class_uid: text_of(tags::AFFECTED_SOP_CLASS_UID),
            affected_sop_instance_uid: text_of(tags::AFFECTED_SOP_INSTANCE_UID),
            has_data_set: u16_of(tags::COMMAND_DATA_SET_TYPE, "Command Data Set Type")
                .map(|v| v != NO_DATA_SET)
                .unwrap_or(false),
        })
    }
}

/// A response command set: `status` with an optional comment (LO, at most 64 characters).
pub fn response(request: &Request, status: u16, comment: Option<&str>) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    if !request.affected_sop_class_uid.is_empty() {
        obj.put(DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(request.affected_sop_class_uid.as_str()),
        ));
    }
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(request.command_field | 0x8000),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        PrimitiveValue::from(request.message_id),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(NO_DATA_SET),
    ));
    obj.put(DataElement::new(
        tags::STATUS,
        VR::US,
        PrimitiveValue::from(status),
    ));
    if let Some(comment) = comment {
        let comment: String = comment
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '\\')
            .take(64)
            .collect();
        obj.put(DataElement::new(
            tags::ERROR_COMMENT,
            VR::LO,
            PrimitiveValue::from(comment),
        ));
    }
    if !request.affected_sop_instance_uid.is_empty() {
        obj.put(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(request.affected_sop_instance_uid.as_str()),
        ));
    }
    let mut body = Vec::with_capacity(256);
    obj.write_dataset_with_ts(&mut body, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("writing a command set to memory cannot fail");
    // Command Group Length (0000,0000) UL, which must come first (PS3.7 E.1).
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trips_through_the_parser() {
        let rq = Request {
            command_field: C_STORE_RQ,
            message_id: 7,
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.6.1".into(),
            affected_sop_instance_uid: "1.2.3".into(),
            has_data_set: true,
        };
        let bytes = response(&rq, 0xB000, Some("duplicate with other content"));
        let obj =
            InMemDicomObject::read_dataset_with_ts(&bytes[..], &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .unwrap();
        let group_length = obj
            .element(tags::COMMAND_GROUP_LENGTH)
            .unwrap()
            .to_int::<u32>()
            .unwrap();
        assert_eq!(group_length as usize, bytes.len() - 12);
        assert_eq!(
            obj.element(tags::STATUS).unwrap().to_int::<u16>().unwrap(),
            0xB000
        );
        assert_eq!(
            obj.element(tags::COMMAND_FIELD)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            0x8001
        );
        assert_eq!(
            obj.element(tags::MESSAGE_ID_BEING_RESPONDED_TO)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            7
        );
    }
}
