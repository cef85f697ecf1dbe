//! What the archive-wide commands print for a person: `verify`, `audit verify`, `backup`,
//! `restore`, `rebuild-index` and `retention`.

use std::fmt::Write;

use super::{format_time, table};
use crate::index::{DeletionRequestRow, NoticeRow, TombstoneRow};
use crate::retention::StudyRetention;

/// What `telecardio verify` found, for a person: the totals, then each failure.
pub fn fixity_text(report: &crate::fixity::Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scope:    {}", report.scope);
    let _ = writeln!(
        out,
        "checked:  {} objects, {} bytes, {} to {}",
        report.objects,
        report.bytes,
        format_time(report.started_at),
        format_time(report.finished_at)
    );
    for key in &report.unindexed {
        let _ = writeln!(
            out,
            "unindexed {key}  (in the store, named by no index row)"
        );
    }
    for r in &report.orphan_reports {
        let _ = writeln!(
            out,
            "orphan report {}  (study {}; no signed report version names it)",
            r.key, r.study_uid
        );
    }
    if !report.unindexed.is_empty() || !report.orphan_reports.is_empty() {
        let _ = writeln!(
            out,
            "leftovers: decide with `telecardio orphans adopt|quarantine KEY --reason …`"
        );
    }
    if report.failures.is_empty() {
        let _ = writeln!(out, "result:   every object matches its recorded SHA-256");
        return out;
    }
    let _ = writeln!(out, "result:   {} FAILED", report.failures.len());
    for f in &report.failures {
        let _ = writeln!(
            out,
            "{:<10} {:<8} study {}  {}",
            f.problem,
            f.kind,
            if f.study_uid.is_empty() {
                "-"
            } else {
                &f.study_uid
            },
            f.key
        );
        let _ = writeln!(out, "           expected {}", f.expected_sha256);
        if !f.found_sha256.is_empty() {
            let _ = writeln!(out, "           found    {}", f.found_sha256);
        }
        if !f.detail.is_empty() {
            let _ = writeln!(out, "           {}", f.detail);
        }
    }
    out
}

/// What `telecardio audit verify` found, for a person.
pub fn chain_text(report: &crate::audit::chain::ChainReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "checked:  {} events (to event {}), {} signed heads, {} to {}",
        report.events, report.last_seq, report.signed_heads, report.started_at, report.finished_at
    );
    if let Some(last) = &report.last_signed_head {
        let _ = writeln!(out, "signed:   last head signed {last}");
    }
    for w in &report.warnings {
        let _ = writeln!(out, "warning:  {w}");
    }
    match &report.broken {
        None => {
            let _ = writeln!(
                out,
                "result:   the audit trail is intact since its first event"
            );
        }
        Some(b) => {
            let kind = serde_json::to_value(b.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(out, "result:   BROKEN at event {} ({kind})", b.seq);
            let _ = writeln!(out, "          {}", b.detail);
        }
    }
    out
}

/// What `telecardio backup` or `restore` did, for a person.
pub fn copy_text(report: &crate::backup::CopyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "archive:  {}", report.archive_id);
    let _ = writeln!(
        out,
        "snapshot: {} ({} index rows)",
        report.snapshot, report.index_rows
    );
    let _ = writeln!(
        out,
        "objects:  {} in all, {} copied ({} bytes), {} already there",
        report.objects, report.copied, report.copied_bytes, report.already_there
    );
    let _ = writeln!(
        out,
        "time:     {} to {}",
        report.started_at, report.finished_at
    );
    if report.failures.is_empty() {
        let _ = writeln!(out, "result:   every object copied is verified by its hash");
    } else {
        let _ = writeln!(out, "result:   {} FAILED", report.failures.len());
        for f in &report.failures {
            let _ = writeln!(out, "{:<10} {}  {}", f.problem, f.key, f.detail);
        }
    }
    out
}

/// What `telecardio rebuild-index` did, for a person.
pub fn rebuild_text(report: &crate::backup::RebuildReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "indexed:   {} of {} DICOM objects, {} to {}",
        report.indexed, report.dicom_objects, report.started_at, report.finished_at
    );
    let _ = writeln!(
        out,
        "referrals: {} from {} documents and HL7 orders, {} linked to their study",
        report.referrals, report.referral_objects, report.linked
    );
    let _ = writeln!(
        out,
        "reports:   {} of {} signed versions, in {} cases",
        report.reports, report.report_objects, report.cases
    );
    if report.to_route > 0 {
        let _ = writeln!(
            out,
            "to route:  {} linked studies without a signed report (routed again when the \
             service starts)",
            report.to_route
        );
    }
    for (prefix, n) in &report.not_indexed {
        let _ = writeln!(
            out,
            "kept:      {n} objects under {prefix}/ (not indexed: restore brings their rows back)"
        );
    }
    if report.unplaced.is_empty() {
        let _ = writeln!(out, "result:    every object placed");
    } else {
        let _ = writeln!(out, "result:    {} NOT PLACED", report.unplaced.len());
        for u in &report.unplaced {
            let _ = writeln!(out, "  {}  {}", u.key, u.why);
        }
    }
    out
}

/// `retention show`: the date in force and why, then holds, extensions and requests.
pub fn retention_text(s: &StudyRetention) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "study:        {}", s.study_uid);
    let _ = writeln!(
        out,
        "kept until:   {}{}",
        s.retain_until,
        if s.expired {
            "  (past: may be deleted)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "legal holds:  {} open", s.open_holds);
    let mut kinds: std::collections::BTreeMap<&str, (usize, String)> = Default::default();
    for o in &s.objects {
        let entry = kinds.entry(o.kind.as_str()).or_default();
        entry.0 += 1;
        entry.1 = entry.1.clone().max(o.retain_until.clone());
    }
    for (kind, (n, until)) in kinds {
        let _ = writeln!(out, "  {n:>6} {kind:<14} latest until {until}");
    }
    for e in &s.extensions {
        let _ = writeln!(
            out,
            "extended to {} by {} on {}: {}",
            e.until_day,
            e.set_by,
            format_time(e.set_at),
            e.reason
        );
    }
    for h in &s.holds {
        let state = match h.released_at {
            Some(at) => format!("released by {} on {}", h.released_by, format_time(at)),
            None => "OPEN".to_owned(),
        };
        let _ = writeln!(
            out,
            "hold {} by {} on {} ({state}): {}",
            h.id,
            h.placed_by,
            format_time(h.placed_at),
            h.reason
        );
    }
    for r in &s.deletion_requests {
        let _ = writeln!(
            out,
            "deletion {} {} by {} on {}: {}",
            r.id,
            r.state,
            r.proposed_by,
            format_time(r.proposed_at),
            r.reason
        );
    }
    out
}

pub fn notices_table(rows: &[NoticeRow]) -> String {
    let header = ["KEPT UNTIL", "STUDY", "OBJECTS", "HOLDS"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            [
                r.retain_until.clone(),
                r.study_uid.clone(),
                r.objects.to_string(),
                r.held.to_string(),
            ]
        })
        .collect();
    table(
        &header,
        &cells,
        "(no study's retention ends in that period)",
    )
}

pub fn deletions_table(rows: &[DeletionRequestRow]) -> String {
    let header = [
        "ID",
        "STATE",
        "STUDY",
        "PROPOSED",
        "BY",
        "DECIDED BY",
        "REASON",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.state.clone(),
                r.study_uid.clone(),
                format_time(r.proposed_at),
                r.proposed_by.clone(),
                r.decided_by.clone(),
                r.reason.clone(),
            ]
        })
        .collect();
    table(&header, &cells, "(no deletion was proposed)")
}

pub fn tombstones_table(rows: &[TombstoneRow]) -> String {
    let header = ["REMOVED", "KIND", "KEY", "SHA-256", "APPROVED BY"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|t| {
            [
                t.removed_at
                    .map(format_time)
                    .unwrap_or_else(|| "pending".into()),
                t.kind.clone(),
                t.object_key.clone(),
                t.sha256.clone(),
                format!("{} (proposed by {})", t.approved_by, t.proposed_by),
            ]
        })
        .collect();
    table(&header, &cells, "(nothing was deleted)")
}
