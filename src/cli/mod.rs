//! What `telecardio studies`, `show`, `unlinked`, `exceptions`, `refusals`, `user list` and
//! `token list` print: aligned tables for people (JSON is printed by the caller for scripts).

mod governance;

use std::fmt::Write;

pub use governance::{
    chain_text, copy_text, deletions_table, fixity_text, notices_table, rebuild_text,
    retention_text, tombstones_table,
};

use crate::index::{
    LinkException, Refusal, StudyDetail, StudyForLink, StudyRow, TokenRow, UserRow,
};

/// `YYYY-MM-DD HH:MM:SS` UTC from index microseconds.
pub fn format_time(micros: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .map(|s| format!("{s}Z"))
        .unwrap_or_default()
}

/// `YYYYMMDD` as `YYYY-MM-DD` when it has that shape.
fn format_da(da: &str) -> String {
    if da.len() == 8 && da.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &da[..4], &da[4..6], &da[6..])
    } else {
        da.to_owned()
    }
}

fn patient(row: &StudyRow) -> String {
    let name = row.patient_name.replace('^', " ").trim().to_owned();
    match (name.is_empty(), row.patient_id.is_empty()) {
        (true, _) => row.patient_id.clone(),
        (false, true) => name,
        (false, false) => format!("{name} ({})", row.patient_id),
    }
}

/// A plain-text table of studies.
pub fn studies_table(rows: &[StudyRow]) -> String {
    let header = [
        "PATIENT",
        "STUDY DATE",
        "MODALITIES",
        "CLINIC",
        "INSTANCES",
        "RECEIVED",
        "STUDY UID",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                patient(r),
                format_da(&r.study_date),
                r.modalities.replace('\\', ","),
                r.clinic_id.clone(),
                r.num_instances.to_string(),
                format_time(r.last_received_at),
                r.study_uid.clone(),
            ]
        })
        .collect();
    table(&header, &cells, "(no studies yet)")
}

/// An aligned plain-text table; `empty` is printed under the header when there are no rows.
pub(crate) fn table<const N: usize>(
    header: &[&str; N],
    cells: &[[String; N]],
    empty: &str,
) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[&str]| {
        let mut text = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut out, header);
    for row in cells {
        line(
            &mut out,
            &row.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    if cells.is_empty() {
        out.push_str(empty);
        out.push('\n');
    }
    out
}

/// `telecardio user list`.
pub fn users_table(users: &[UserRow]) -> String {
    let header = [
        "NAME",
        "ROLE",
        "INSTITUTION",
        "SIGN-IN",
        "STATUS",
        "CREATED",
    ];
    let cells: Vec<[String; 6]> = users
        .iter()
        .map(|u| {
            [
                u.name.clone(),
                u.role.clone(),
                u.institution.clone(),
                if u.password_hash.is_empty() {
                    "token only".into()
                } else {
                    "password".into()
                },
                match u.disabled_at {
                    Some(t) => format!("disabled {}", format_time(t)),
                    None => "active".into(),
                },
                format_time(u.created_at),
            ]
        })
        .collect();
    table(&header, &cells, "(no users yet)")
}

/// `telecardio token list`.
pub fn tokens_table(tokens: &[TokenRow]) -> String {
    let header = ["ID", "USER", "LABEL", "STATUS", "LAST USED", "CREATED"];
    let now = crate::index::now_micros();
    let cells: Vec<[String; 6]> = tokens
        .iter()
        .map(|t| {
            let status = match (t.revoked_at, t.expires_at) {
                (Some(r), _) => format!("revoked {}", format_time(r)),
                (None, Some(e)) if e < now => format!("expired {}", format_time(e)),
                (None, Some(e)) => format!("valid until {}", format_time(e)),
                (None, None) => "valid".into(),
            };
            [
                t.id.clone(),
                t.user_name.clone(),
                t.label.clone(),
                status,
                t.last_used_at
                    .map(format_time)
                    .unwrap_or_else(|| "never".into()),
                format_time(t.created_at),
            ]
        })
        .collect();
    table(&header, &cells, "(no tokens)")
}

/// A study with its series and instances, for people.
pub fn study_text(d: &StudyDetail) -> String {
    let s = &d.study;
    let mut out = String::new();
    let _ = writeln!(out, "Study {}", s.study_uid);
    let _ = writeln!(out, "  Patient:      {}", patient(s));
    if !s.patient_issuer.is_empty() {
        let _ = writeln!(out, "  Issuer:       {}", s.patient_issuer);
    }
    let _ = writeln!(
        out,
        "  Birth date:   {}   Sex: {}",
        format_da(&s.birth_date),
        s.sex
    );
    let _ = writeln!(
        out,
        "  Study date:   {} {}",
        format_da(&s.study_date),
        s.study_time
    );
    let _ = writeln!(out, "  Accession:    {}", s.accession_number);
    let _ = writeln!(out, "  Description:  {}", s.description);
    let _ = writeln!(
        out,
        "  Referring:    {}",
        s.referring_physician.replace('^', " ")
    );
    let _ = writeln!(out, "  Clinic:       {}", s.clinic_id);
    let _ = writeln!(
        out,
        "  Content:      {} series, {} instances, {} bytes, modalities {}",
        s.num_series,
        s.num_instances,
        s.total_bytes,
        s.modalities.replace('\\', ",")
    );
    let _ = writeln!(
        out,
        "  Received:     {} .. {}",
        format_time(s.first_received_at),
        format_time(s.last_received_at)
    );
    for series in &d.series {
        let _ = writeln!(
            out,
            "\n  Series {} [{}] #{} {} ({} instances)",
            series.series_uid,
            series.modality,
            series
                .series_number
                .map(|n| n.to_string())
                .unwrap_or_default(),
            series.description,
            series.num_instances
        );
        for i in d
            .instances
            .iter()
            .filter(|i| i.series_uid == series.series_uid)
        {
            let _ = writeln!(
                out,
                "    {} #{} class {} ts {} frames {} {} bytes sha256 {} from {} at {}",
                i.sop_instance_uid,
                i.instance_number.map(|n| n.to_string()).unwrap_or_default(),
                i.sop_class_uid,
                i.transfer_syntax,
                i.number_of_frames
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                i.size_bytes,
                i.sha256,
                i.calling_ae,
                format_time(i.received_at)
            );
            let _ = writeln!(out, "      key {}", i.object_key);
        }
    }
    if !d.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "\n  Conflicts (same SOP Instance UID, other content; all copies kept): {}",
            d.conflicts.join(", ")
        );
    }
    out
}

/// `telecardio unlinked`: studies no referral is linked to.
pub fn unlinked_table(rows: &[StudyForLink]) -> String {
    let header = ["PATIENT", "ACCESSION", "CLINIC", "STUDY UID"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let name = r.patient_name.replace('^', " ").trim().to_owned();
            [
                format!("{name} ({})", r.patient_id),
                r.accession_number.clone(),
                r.clinic_id.clone(),
                r.study_uid.clone(),
            ]
        })
        .collect();
    table(&header, &cells, "(every study has its referral)")
}

/// `telecardio exceptions`: links left for an administrator.
pub fn exceptions_table(rows: &[LinkException]) -> String {
    let header = ["ID", "KIND", "CLINIC", "STUDY UID", "SINCE", "REASON"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|e| {
            [
                e.id.clone(),
                e.kind.clone(),
                e.clinic_id.clone(),
                e.study_uid.clone(),
                format_time(e.created_at),
                e.reason.clone(),
            ]
        })
        .collect();
    table(&header, &cells, "(no open exceptions)")
}

/// `telecardio refusals`: objects refused because they named another clinic's data.
pub fn refusals_table(rows: &[Refusal]) -> String {
    let header = ["WHEN", "FROM", "OWNER", "NAMED", "DOOR", "BY"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                format_time(r.at),
                r.clinic_id.clone(),
                r.owner_id.clone(),
                format!("{} {}", r.what, r.uid),
                r.door.clone(),
                format!("{} ({})", r.actor, r.address),
            ]
        })
        .collect();
    table(&header, &cells, "(no write was refused)")
}
