//! DIMSE command sets (PS3.7 9.3, 10.3): reading requests and writing responses.
//!
//! Command sets are always implicit VR little endian and small, so they are parsed whole with
//! dicom-object; data sets never pass through here.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_GET_RQ: u16 = 0x0010;
pub const C_FIND_RQ: u16 = 0x0020;
pub const C_MOVE_RQ: u16 = 0x0021;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_CANCEL_RQ: u16 = 0x0FFF;
/// Command Data Set Type value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;
/// Command Data Set Type value we write when a data set follows (any other value means so).
pub const DATA_SET_FOLLOWS: u16 = 0x0000;

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
    pub priority: u16,
    /// C-MOVE only: the AE the sub-operations go to.
    pub move_destination: String,
}

/// Sub-operation counts of a C-MOVE or C-GET response (PS3.7 9.1.3, 9.1.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubOperations {
    pub remaining: u16,
    pub completed: u16,
    pub failed: u16,
    pub warning: u16,
}

/// The fields of a response we act on (C-STORE responses to our sub-operations).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub command_field: u16,
    pub message_id_responded_to: u16,
    pub status: u16,
    pub comment: String,
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
            priority: u16_of(tags::PRIORITY, "Priority").unwrap_or(0),
            move_destination: text_of(tags::MOVE_DESTINATION),
        })
    }
}

/// The Command Field of a command set, to tell requests from responses.
pub fn command_field(bytes: &[u8]) -> Result<u16, CommandError> {
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| CommandError::Parse(e.to_string()))?;
    obj.element(tags::COMMAND_FIELD)
        .ok()
        .and_then(|e| e.to_int::<u16>().ok())
        .ok_or(CommandError::Missing("Command Field (0000,0100)"))
}

impl Reply {
    pub fn parse(bytes: &[u8]) -> Result<Reply, CommandError> {
        let obj =
            InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .map_err(|e| CommandError::Parse(e.to_string()))?;
        let u16_of = |tag, name| {
            obj.element(tag)
                .ok()
                .and_then(|e| e.to_int::<u16>().ok())
                .ok_or(CommandError::Missing(name))
        };
        Ok(Reply {
            command_field: u16_of(tags::COMMAND_FIELD, "Command Field (0000,0100)")?,
            message_id_responded_to: u16_of(
                tags::MESSAGE_ID_BEING_RESPONDED_TO,
                "Message ID Being Responded To (0000,0120)",
            )?,
            status: u16_of(tags::STATUS, "Status (0000,0900)")?,
            comment: obj
                .element(tags::ERROR_COMMENT)
                .ok()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        })
    }
}

/// A C-STORE request for a sub-operation of a C-MOVE (with its originator) or C-GET.
pub fn store_request(
    message_id: u16,
    sop_class_uid: &str,
    sop_instance_uid: &str,
    priority: u16,
    move_originator: Option<(&str, u16)>,
) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    put_uid(&mut obj, tags::AFFECTED_SOP_CLASS_UID, sop_class_uid);
    put_us(&mut obj, tags::COMMAND_FIELD, C_STORE_RQ);
    put_us(&mut obj, tags::MESSAGE_ID, message_id);
    put_us(&mut obj, tags::PRIORITY, priority);
    put_us(&mut obj, tags::COMMAND_DATA_SET_TYPE, DATA_SET_FOLLOWS);
    put_uid(&mut obj, tags::AFFECTED_SOP_INSTANCE_UID, sop_instance_uid);
    if let Some((ae, id)) = move_originator {
        obj.put(DataElement::new(
            tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE,
            VR::AE,
            PrimitiveValue::from(ae),
        ));
        put_us(&mut obj, tags::MOVE_ORIGINATOR_MESSAGE_ID, id);
    }
    encode(&obj)
}

fn put_us(obj: &mut InMemDicomObject, tag: dicom_core::Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

fn put_uid(obj: &mut InMemDicomObject, tag: dicom_core::Tag, value: &str) {
    obj.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(value)));
}

/// A command set with its group length first (PS3.7 E.1).
fn encode(obj: &InMemDicomObject) -> Vec<u8> {
    let mut body = Vec::with_capacity(256);
    obj.write_dataset_with_ts(&mut body, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("writing a command set to memory cannot fail");
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A response command set: `status` with an optional comment (LO, at most 64 characters).
pub fn response(request: &Request, status: u16, comment: Option<&str>) -> Vec<u8> {
    response_with(request, status, comment, None, false)
}

/// A response that may announce a data set (a C-FIND match, a failed-instance list) and carry
/// sub-operation counts.
pub fn response_with(
    request: &Request,
    status: u16,
    comment: Option<&str>,
    sub_operations: Option<SubOperations>,
    has_data_set: bool,
) -> Vec<u8> {
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
        PrimitiveValue::from(if has_data_set {
            DATA_SET_FOLLOWS
        } else {
            NO_DATA_SET
        }),
    ));
    if let Some(ops) = sub_operations {
        // Remaining is only sent with pending statuses (PS3.4 C.4.2.1.6).
        if status == 0xFF00 {
            put_us(
                &mut obj,
                tags::NUMBER_OF_REMAINING_SUBOPERATIONS,
                ops.remaining,
            );
        }
        put_us(
            &mut obj,
            tags::NUMBER_OF_COMPLETED_SUBOPERATIONS,
            ops.completed,
        );
        put_us(&mut obj, tags::NUMBER_OF_FAILED_SUBOPERATIONS, ops.failed);
        put_us(&mut obj, tags::NUMBER_OF_WARNING_SUBOPERATIONS, ops.warning);
    }
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
    encode(&obj)
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
            ..Request::default()
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
