//! The one door to stored patient data for every reader: C-FIND, C-MOVE, C-GET and DICOMweb
//! all come through here.
//!
//! Each call checks the caller's permission, applies the caller's scope to the index search
//! and writes the access to the audit trail *before* any data leaves (if the audit record
//! cannot be written, nothing is answered). A study outside the caller's scope is answered as
//! not found, and the attempt is audited as denied. Edges never call the index's search
//! directly.

use futures::stream::{BoxStream, StreamExt, TryStreamExt};

use crate::access::{Action, Denied, Policy, Principal};
use crate::archive::{Archive, ArchiveError, ObjectKey};
use crate::audit::AuditTrail;
use crate::fault::Fault;
use crate::index::{
    AuditEvent, Condition, Field, Filter, Hit, Index, IndexError, Level, Scope, Search,
};
use crate::pixels::{layout, Layout, PixelError};
use crate::query::{Query, QueryError};

/// The most data set bytes (besides pixel data) held in memory to answer metadata or frames.
const MAX_HEADER_BYTES: u64 = 128 * 1024 * 1024;
/// Largest Encapsulated PDF or CDA object rendered as its document.
const MAX_DOCUMENT_OBJECT: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("nothing matches {0}")]
    NotFound(String),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("access cannot be audited, so it is refused: {0}")]
    AuditUnavailable(IndexError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("stored object `{key}` is damaged: {why}")]
    Damaged { key: String, why: String },
    #[error(transparent)]
    Pixels(#[from] PixelError),
}

impl CatalogError {
    pub fn fault(&self) -> Fault {
        match self {
            CatalogError::Denied(_) => Fault::Forbidden,
            CatalogError::Query(e) => e.fault(),
            CatalogError::NotFound(_) => Fault::NotFound,
            CatalogError::Index(_) | CatalogError::AuditUnavailable(_) => Fault::Unavailable,
            CatalogError::Archive(_) => Fault::Unavailable,
            CatalogError::Damaged { .. } => Fault::Bug,
            CatalogError::Pixels(e) => e.fault(),
        }
    }
}

/// What a retrieval asks for: a study, optionally narrowed to series or instances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub study_uids: Vec<String>,
    pub series_uids: Vec<String>,
    pub sop_instance_uids: Vec<String>,
}

impl Selection {
    pub fn study(uid: &str) -> Selection {
        Selection {
            study_uids: vec![uid.to_owned()],
            ..Selection::default()
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, list) in [
            ("study", &self.study_uids),
            ("series", &self.series_uids),
            ("instance", &self.sop_instance_uids),
        ] {
            if !list.is_empty() {
                parts.push(format!("{name} {}", list.join(",")));
            }
        }
        parts.join(" ")
    }

    fn filters(&self) -> Vec<Filter> {
        let mut filters = Vec::new();
        for (field, list) in [
            (Field::StudyUid, &self.study_uids),
            (Field::SeriesUid, &self.series_uids),
            (Field::SopInstanceUid, &self.sop_instance_uids),
        ] {
            if !list.is_empty() {
                filters.push(Filter {
                    field,
                    condition: Condition::AnyOf(list.clone()),
                });
            }
        }
        filters
    }
}

#[derive(Clone)]
pub struct Catalog {
    index: Index,
    archive: Archive,
    policy: Policy,
    audit: AuditTrail,
}

impl Catalog {
    pub fn new(index: Index, archive: Archive, policy: Policy, audit: AuditTrail) -> Catalog {
        Catalog {
            index,
            archive,
            policy,
            audit,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Matches for `query` within the caller's scope, streamed.
    pub async fn find(
        &self,
        who: &Principal,
        query: &Query,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<BoxStream<'static, Result<Hit, CatalogError>>, CatalogError> {
        let mut event = event(who, "query");
        event.detail = query.summary();
        event.patient_id = query.single_value(dicom_dictionary_std::tags::PATIENT_ID);
        event.study_uid = query.single_value(dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
        self.permit(who, Action::Query, &mut event).await?;
        let search = match query.search(self.policy.scope(who), limit, offset) {
            Ok(search) => search,
            Err(e) => {
                event.outcome = format!("refused: {e}");
                self.audit.record(event).await;
                return Err(e.into());
            }
        };
        let search = match self.honour_merges(search).await {
            Ok(search) => search,
            Err(e) => {
                event.outcome = format!("refused: {e}");
                self.audit.record(event).await;
                return Err(e);
            }
        };
        event.outcome = "answered".into();
        self.audit
            .record_required(event)
            .await
            .map_err(CatalogError::AuditUnavailable)?;
        Ok(self
            .index
            .search(&search)
            .map_err(CatalogError::from)
            .boxed())
    }

    /// A patient merged away (ADT^A40) is found under the patient it was merged into: a
    /// match on the prior identifier also matches the survivor, in the clinic that merged them.
    async fn honour_merges(&self, mut search: Search) -> Result<Search, CatalogError> {
        let clinics = match &search.scope {
            Scope::Everything => None,
            Scope::Clinics(list) => Some(list.clone()),
        };
        for filter in &mut search.filters {
            if filter.field != Field::PatientId {
                continue;
            }
            let Condition::Equals(prior) = &filter.condition else {
                continue;
            };
            let survivors = self.index.merged_into(prior, clinics.as_deref()).await?;
            if !survivors.is_empty() {
                filter.condition = Condition::Merged {
                    id: prior.clone(),
                    survivors,
                };
            }
        }
        Ok(search)
    }

    /// The instances of `selection` the caller may retrieve, for `purpose` (e.g. "C-MOVE to
    /// READER1"). Each study is audited; if nothing in scope matches, the attempt is audited
    /// and answered as not found, whether or not the data exist elsewhere.
    pub async fn retrieve(
        &self,
        who: &Principal,
        selection: &Selection,
        action: Action,
        purpose: &str,
    ) -> Result<Vec<Hit>, CatalogError> {
        let mut attempt = event(who, "retrieve");
        attempt.detail = format!("{purpose}: {}", selection.describe());
        attempt.study_uid = selection.study_uids.first().cloned().unwrap_or_default();
        self.permit(who, action, &mut attempt).await?;
        let hits = self
            .collect(Search {
                level: Level::Instance,
                filters: selection.filters(),
                scope: self.policy.scope(who),
                limit: None,
                offset: 0,
            })
            .await?;
        if hits.is_empty() {
            let exists = !self
                .collect(Search {
                    level: Level::Instance,
                    filters: selection.filters(),
                    scope: Scope::Everything,
                    limit: Some(1),
                    offset: 0,
                })
                .await?
                .is_empty();
            attempt.outcome = if exists {
                "denied: outside the caller's scope".into()
            } else {
                "not found".into()
            };
            self.audit.record(attempt).await;
            return Err(CatalogError::NotFound(selection.describe()));
        }
        let mut studies: Vec<(&str, &str, usize)> = Vec::new();
        for hit in &hits {
            match studies.iter_mut().find(|(s, _, _)| *s == hit.study_uid) {
                Some(entry) => entry.2 += 1,
                None => studies.push((&hit.study_uid, &hit.patient_id, 1)),
            }
        }
        for (study_uid, patient_id, count) in studies {
            let mut e = attempt.clone();
            e.study_uid = study_uid.to_owned();
            e.patient_id = patient_id.to_owned();
            e.outcome = format!("released {count} instances");
            self.audit
                .record_required(e)
                .await
                .map_err(CatalogError::AuditUnavailable)?;
        }
        Ok(hits)
    }

    /// Writes refused because they named another clinic's data, newest first: for
    /// administrators and auditors, who follow them up.
    pub async fn refusals(
        &self,
        who: &Principal,
        since: i64,
        limit: i64,
    ) -> Result<Vec<crate::index::Refusal>, CatalogError> {
        let mut event = event(who, "refusals_read");
        event.detail = format!("ownership refusals since {}", crate::index::rfc3339(since));
        self.permit(who, Action::ReadAudit, &mut event).await?;
        event.outcome = "answered".into();
        self.audit
            .record_required(event)
            .await
            .map_err(CatalogError::AuditUnavailable)?;
        Ok(self.index.refusals(since, limit).await?)
    }

    /// The audit trail, searched by an auditor or administrator; the search itself is audited
    /// (naming the patient and study searched for).
    pub async fn audit_search(
        &self,
        who: &Principal,
        search: &crate::index::AuditSearch,
    ) -> Result<Vec<AuditEvent>, CatalogError> {
        let mut event = event(who, "audit_read");
        event.detail = format!(
            "actor={} from={} to={} refused={}",
            if search.actor.is_empty() {
                "*"
            } else {
                &search.actor
            },
            search.from,
            search.to,
            search.refused.map_or("*".to_owned(), |r| r.to_string()),
        );
        event.patient_id = search.patient_id.clone();
        event.study_uid = search.study_uid.clone();
        self.permit(who, Action::ReadAudit, &mut event).await?;
        event.outcome = "answered".into();
        self.audit
            .record_required(event)
            .await
            .map_err(CatalogError::AuditUnavailable)?;
        Ok(self.index.audit_search(search).await?)
    }

    /// What each clinic sent in each of `periods` (`[from, to)` in microseconds): studies,
    /// objects, bytes. One audit record for the whole overview.
    pub async fn archive_tally(
        &self,
        who: &Principal,
        periods: &[(i64, i64)],
    ) -> Result<Vec<Vec<crate::index::ArchiveTally>>, CatalogError> {
        let mut event = event(who, "archive_overview_read");
        event.detail = match (periods.first(), periods.last()) {
            (Some(first), Some(last)) => format!(
                "{} periods from {} to {}",
                periods.len(),
                crate::index::rfc3339(first.0),
                crate::index::rfc3339(last.1)
            ),
            _ => "no period".into(),
        };
        self.permit(who, Action::ReadAudit, &mut event).await?;
        event.outcome = "answered".into();
        self.audit
            .record_required(event)
            .await
            .map_err(CatalogError::AuditUnavailable)?;
        let mut tallies = Vec::with_capacity(periods.len());
        for (from, to) in periods {
            tallies.push(self.index.archive_tally(*from, *to).await?);
        }
        Ok(tallies)
    }

    /// Lets an auditor or administrator read a record about the archive itself (a fixity
    /// report, the audit chain's check): permitted and audited like any read of the trail.
    pub async fn permit_governance_read(
        &self,
        who: &Principal,
        kind: &str,
        detail: String,
    ) -> Result<(), CatalogError> {
        self.permit_recorded(who, Action::ReadAudit, kind, detail, "answered")
            .await
    }

    /// Lets an administrator act on the archive's own records (freeze or deliver an indicator
    /// report): permitted and audited, refusals too.
    pub async fn permit_administration(
        &self,
        who: &Principal,
        kind: &str,
        detail: String,
    ) -> Result<(), CatalogError> {
        self.permit_recorded(who, Action::Administer, kind, detail, "done")
            .await
    }

    /// `action` permitted to `who`, or refused; either way on record (`outcome` when
    /// permitted), and nothing goes ahead unless the record is kept.
    async fn permit_recorded(
        &self,
        who: &Principal,
        action: Action,
        kind: &str,
        detail: String,
        outcome: &str,
    ) -> Result<(), CatalogError> {
        let mut event = event(who, kind);
        event.detail = detail;
        self.permit(who, action, &mut event).await?;
        event.outcome = outcome.into();
        self.audit
            .record_required(event)
            .await
            .map_err(CatalogError::AuditUnavailable)
    }

    /// Where the data set of a retrieved instance starts in its stored Part 10 object.
    pub async fn dataset_offset(&self, hit: &Hit) -> Result<u64, CatalogError> {
        let key = ObjectKey::from(hit.object_key.as_str());
        let head = self.archive.read_range(&key, 0..144).await?;
        let damaged = |why: &str| CatalogError::Damaged {
            key: hit.object_key.clone(),
            why: why.to_owned(),
        };
        // Preamble, "DICM", then (0002,0000) UL: tag, VR, length, value (PS3.10 7.1).
        if head.len() < 144 || &head[128..132] != b"DICM" || head[132..136] != [2, 0, 0, 0] {
            return Err(damaged("no Part 10 header"));
        }
        let group = u32::from_le_bytes([head[140], head[141], head[142], head[143]]);
        Ok(144 + u64::from(group))
    }

    /// The stored data set of a retrieved instance as a byte stream (without the file header).
    pub async fn dataset(
        &self,
        hit: &Hit,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, ArchiveError>>, CatalogError> {
        let offset = self.dataset_offset(hit).await?;
        let key = ObjectKey::from(hit.object_key.as_str());
        Ok(self.archive.stream_from(&key, offset).await?)
    }

    /// The whole stored Part 10 object of a retrieved instance as a byte stream.
    pub async fn object(
        &self,
        hit: &Hit,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, ArchiveError>>, CatalogError> {
        let key = ObjectKey::from(hit.object_key.as_str());
        Ok(self.archive.stream(&key).await?)
    }

    /// Where the parts of a retrieved instance are: its data set before Pixel Data, its frames.
    pub async fn layout(&self, hit: &Hit) -> Result<Layout, CatalogError> {
        let key = ObjectKey::from(hit.object_key.as_str());
        let dataset_at = self.dataset_offset(hit).await?;
        let size = u64::try_from(hit.size_bytes).unwrap_or(0);
        Ok(layout::read(
            &self.archive,
            &key,
            size,
            dataset_at,
            &hit.transfer_syntax,
            MAX_HEADER_BYTES,
        )
        .await?)
    }

    /// The document an Encapsulated PDF or CDA instance carries. Such objects are read whole
    /// (they are a few megabytes); one over [`MAX_DOCUMENT_OBJECT`] is refused rather than
    /// held in memory.
    pub async fn document(&self, hit: &Hit) -> Result<Vec<u8>, CatalogError> {
        if u64::try_from(hit.size_bytes).unwrap_or(u64::MAX) > MAX_DOCUMENT_OBJECT {
            return Err(PixelError::Unsupported(format!(
                "documents over {} MiB are retrieved as DICOM, not rendered",
                MAX_DOCUMENT_OBJECT >> 20
            ))
            .into());
        }
        let key = ObjectKey::from(hit.object_key.as_str());
        let object = self.archive.read(&key).await?;
        crate::reports::document::encapsulated_document(&object).map_err(|why| {
            CatalogError::Damaged {
                key: hit.object_key.clone(),
                why,
            }
        })
    }

    /// The waveform groups and annotations of a retrieved instance, found from its element
    /// headers.
    pub async fn waveforms(
        &self,
        hit: &Hit,
    ) -> Result<crate::pixels::waveform::Recording, CatalogError> {
        let key = ObjectKey::from(hit.object_key.as_str());
        let dataset_at = self.dataset_offset(hit).await?;
        let size = u64::try_from(hit.size_bytes).unwrap_or(0);
        Ok(crate::pixels::waveform::locate(
            &self.archive,
            &key,
            size,
            dataset_at,
            &hit.transfer_syntax,
        )
        .await?)
    }

    /// Samples of one waveform group of a retrieved instance, at most `points` per channel.
    pub async fn waveform_window(
        &self,
        hit: &Hit,
        group: &crate::pixels::waveform::Group,
        first: u64,
        count: u64,
        points: u64,
    ) -> Result<crate::pixels::waveform::Window, CatalogError> {
        let key = ObjectKey::from(hit.object_key.as_str());
        Ok(
            crate::pixels::waveform::window(&self.archive, &key, group, first, count, points)
                .await?,
        )
    }

    /// Byte ranges of a retrieved instance, one after the other, as a stream.
    pub fn ranges(
        &self,
        hit: &Hit,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxStream<'static, Result<bytes::Bytes, ArchiveError>> {
        let archive = self.archive.clone();
        let key = ObjectKey::from(hit.object_key.as_str());
        futures::stream::iter(ranges)
            .then(move |range| {
                let archive = archive.clone();
                let key = key.clone();
                async move { archive.stream_range(&key, range).await }
            })
            .try_flatten()
            .boxed()
    }

    /// Byte ranges of a retrieved instance, each read whole (one frame's fragments).
    pub async fn read_ranges(
        &self,
        hit: &Hit,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>, CatalogError> {
        let key = ObjectKey::from(hit.object_key.as_str());
        let mut out = Vec::with_capacity(ranges.len());
        for range in ranges {
            out.push(self.archive.read_range(&key, range.clone()).await?);
        }
        Ok(out)
    }

    async fn permit(
        &self,
        who: &Principal,
        action: Action,
        event: &mut AuditEvent,
    ) -> Result<(), CatalogError> {
        if let Err(denied) = self.policy.permit(who, action) {
            event.outcome = format!("denied: {denied}");
            self.audit.record(event.clone()).await;
            return Err(denied.into());
        }
        Ok(())
    }

    async fn collect(&self, search: Search) -> Result<Vec<Hit>, CatalogError> {
        Ok(self.index.search(&search).try_collect().await?)
    }
}

/// An audit event for an access by `who`.
pub fn event(who: &Principal, kind: &str) -> AuditEvent {
    let mut e = AuditEvent::now(kind, &who.name, &who.institution, &who.address);
    e.role = who.role.as_str().to_owned();
    e
}
