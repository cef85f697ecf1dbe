//! The reading workflow up to the reader: cases are routed to a consulting centre by the
//! configured rules once referral and data are linked and the study has stopped growing, and
//! assigned to a reader there (the centre's shared worklist, or the available reader with the
//! fewest open cases); readers claim cases from their worklist, a claim lapsing after a quiet
//! spell. Administrators route studies without a referral and re-route open cases, with a
//! reason. Each step is journaled and audited; every clock the indicators need is recorded when
//! it happens.
//!
//! Routing runs in the background over what the index says, so a case is routed however its
//! link came about (either arrival order, an administrator's decision) and after a restart.

mod cancel;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::access::{Action, Denied, Policy, Principal, Role};
use crate::audit::AuditTrail;
use crate::catalog;
use crate::config::{Assignment, Config, RoutingRule};
use crate::fault::Fault;
use crate::index::{now_micros, Candidate, CaseFilter, CaseRow, Index, IndexError, JournalEntry};
use rules::{age_on, first_match, Facts};

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("no case {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl RoutingError {
    pub fn fault(&self) -> Fault {
        match self {
            RoutingError::Denied(_) => Fault::Forbidden,
            RoutingError::NotFound(_) => Fault::NotFound,
            RoutingError::Conflict(_) | RoutingError::Invalid { .. } => Fault::BadInput,
            RoutingError::Index(_) => Fault::Unavailable,
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> RoutingError {
    RoutingError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The name routing acts under in the journal and the audit trail.
const SYSTEM: &str = "telecardio";

/// What a worklist asks for.
#[derive(Debug, Clone, Default)]
pub struct WorklistQuery {
    pub status: Option<String>,
    pub urgency: Option<String>,
    pub examination: Option<String>,
    /// Only the caller's own cases (assigned or claimed).
    pub mine: bool,
    /// Administrators: only unrouted cases, or one centre's.
    pub centre: Option<String>,
    /// Every status, closed cases included (a clinic following what it sent).
    pub every_status: bool,
    /// Cases skipped, in worklist order (for the next page).
    pub offset: i64,
    /// At most this many (default 1,000).
    pub limit: Option<i64>,
}

#[derive(Clone)]
pub struct Routing {
    index: Index,
    config: Arc<Config>,
    policy: Policy,
    audit: AuditTrail,
}

impl Routing {
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn new(index: Index, config: Arc<Config>, policy: Policy, audit: AuditTrail) -> Routing {
        Routing {
            index,
            config,
            policy,
            audit,
        }
    }

    /// Routes ready cases until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_secs(self.config.routing.study_stable_seconds.clamp(1, 5));
        loop {
            match self.route_ready().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(cases = n, "cases routed"),
                Err(e) => tracing::warn!(error = %e, "routing deferred"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Makes a case of every linked study that has stopped receiving objects.
    pub async fn route_ready(&self) -> Result<usize, IndexError> {
        let stable = self.config.routing.stable_micros();
        let candidates = self
            .index
            .routing_candidates(now_micros() - stable, 500)
            .await?;
        let mut routed = 0;
        for candidate in candidates {
            let study = candidate.study_uid.clone();
            // One case that cannot be filed must not hold up the others behind it.
            match self.route(candidate, SYSTEM, None).await {
                Ok(Some(_)) => routed += 1,
                Ok(None) => {}
                Err(e) => tracing::warn!(%study, error = %e, "case not routed; retried later"),
            }
        }
        Ok(routed)
    }

    /// Files the case of `c` where the first matching rule says (or unrouted), journaled.
    /// `None` when the study has a case already.
    async fn route(
        &self,
        c: Candidate,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Option<CaseRow>, IndexError> {
        let now = now_micros();
        // The referral's own date when it has one (CDA/HL7 TS, YYYYMMDD…); text from outside,
        // so checked rather than sliced blindly.
        let on = c
            .referral_written
            .get(..8)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .map_or_else(today, str::to_owned);
        let facts = Facts {
            clinic_id: c.clinic_id.clone(),
            examination: c.examination.clone(),
            urgency: c.urgency.clone(),
            age: age_on(&c.birth_date, &on),
        };
        let mut case = CaseRow {
            id: uuid::Uuid::now_v7().to_string(),
            referral_id: c.referral_id.clone(),
            study_uid: c.study_uid.clone(),
            clinic_id: c.clinic_id.clone(),
            examination: c.examination.clone(),
            urgency: c.urgency.clone(),
            patient_id: c.patient_id.clone(),
            patient_name: c.patient_name.clone(),
            birth_date: c.birth_date.clone(),
            referral_written: c.referral_written.clone(),
            referral_at: (!c.referral_id.is_empty()).then_some(c.referral_at),
            data_at: c.data_at,
            ready_at: c.data_at.max(c.linked_at),
            created_at: now,
            updated_at: now,
            ..CaseRow::default()
        };
        let Some(rule) = first_match(&self.config, &facts) else {
            case.status = "unrouted".into();
            case.rule = format!(
                "no rule matched: clinic {}, {}, {}, age {}",
                facts.clinic_id,
                facts.examination,
                facts.urgency,
                facts.age.map_or("unknown".into(), |a| a.to_string())
            );
            let inserted = self.index.insert_case(&case, None).await?;
            if inserted {
                tracing::warn!(study = %case.study_uid, why = %case.rule, "case left unrouted for an administrator");
            }
            return Ok(inserted.then_some(case));
        };
        case.centre_id = rule.centre.clone();
        case.reader = self.pick_reader(rule).await?;
        case.status = "new".into();
        case.rule = rule.name.clone();
        case.routed_at = Some(now);
        let to = if case.reader.is_empty() {
            "the shared worklist".to_owned()
        } else {
            format!("reader {}", case.reader)
        };
        let mut detail = format!("to {} ({}) by rule `{}`", case.centre_id, to, rule.name);
        if let Some(reason) = reason {
            detail = format!("{detail}, without a referral: {reason}");
        }
        let journal = JournalEntry::of_case(&case, "routed", &case.centre_id, actor, "", detail);
        let inserted = self.index.insert_case(&case, Some(&journal)).await?;
        Ok(inserted.then_some(case))
    }

    /// The reader a rule's case goes to: '' for the shared worklist (pool, or nobody available).
    async fn pick_reader(&self, rule: &RoutingRule) -> Result<String, IndexError> {
        if rule.assign == Assignment::Pool {
            return Ok(String::new());
        }
        let available: Vec<String> = self
            .index
            .centre_readers(&rule.centre, false)
            .await?
            .into_iter()
            .filter(|r| rule.readers.is_empty() || rule.readers.contains(r))
            .collect();
        let load = self.index.open_load(&available).await?;
        let open = |name: &str| {
            load.iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, count)| *count)
        };
        // Fewest open cases first; the name breaks ties, so assignment is reproducible.
        let chosen = available
            .iter()
            .min_by(|a, b| open(a).cmp(&open(b)).then_with(|| a.cmp(b)))
            .cloned();
        if chosen.is_none() {
            tracing::warn!(rule = %rule.name, centre = %rule.centre, "no reader available; case goes to the shared worklist");
        }
        Ok(chosen.unwrap_or_default())
    }

    /// The cases `who` works on or oversees: a cardiologist their centre's, a clinic its own,
    /// administrators and auditors all (unrouted ones included).
    pub async fn worklist(
        &self,
        who: &Principal,
        q: &WorklistQuery,
    ) -> Result<Vec<CaseRow>, RoutingError> {
        self.policy.permit(who, Action::Query)?;
        let mut filter = CaseFilter {
            statuses: q.status.iter().cloned().collect(),
            urgency: q.urgency.clone(),
            examination: q.examination.clone(),
            reader: q.mine.then(|| who.name.clone()),
            limit: q.limit.unwrap_or(1000),
            offset: q.offset,
            ..CaseFilter::default()
        };
        match who.role {
            Role::Cardiologist => filter.centres = Some(vec![who.institution.clone()]),
            Role::Clinic => filter.clinics = Some(vec![who.institution.clone()]),
            Role::Admin | Role::Auditor => {
                filter.centres = q.centre.as_ref().map(|c| vec![c.clone()]);
            }
        }
        if filter.statuses.is_empty() {
            let open: &[&str] = if q.every_status {
                &["unrouted", "new", "in_progress", "reported", "delivered"]
            } else {
                &["unrouted", "new", "in_progress"]
            };
            filter.statuses = open.iter().map(|s| s.to_string()).collect();
        }
        let mut event = catalog::event(who, "worklist_read");
        event.detail = format!(
            "status={} urgency={} examination={} mine={}",
            q.status
                .as_deref()
                .unwrap_or(if q.every_status { "every" } else { "open" }),
            q.urgency.as_deref().unwrap_or("*"),
            q.examination.as_deref().unwrap_or("*"),
            q.mine
        );
        event.outcome = "answered".into();
        self.audit.record_required(event).await?;
        Ok(self.index.cases(&filter).await?)
    }

    /// A case `who` may see, else not found.
    pub(crate) async fn visible(&self, who: &Principal, id: &str) -> Result<CaseRow, RoutingError> {
        let case = self
            .index
            .case(id)
            .await?
            .ok_or_else(|| RoutingError::NotFound(id.to_owned()))?;
        let sees = match who.role {
            Role::Cardiologist => case.centre_id == who.institution,
            Role::Clinic => case.clinic_id == who.institution,
            Role::Admin | Role::Auditor => true,
        };
        if sees {
            Ok(case)
        } else {
            Err(RoutingError::NotFound(id.to_owned()))
        }
    }

    /// One case `who` may see (audited), else not found.
    pub async fn case(&self, who: &Principal, id: &str) -> Result<CaseRow, RoutingError> {
        self.policy.permit(who, Action::Query)?;
        let found = self.visible(who, id).await;
        let mut event = catalog::event(who, "case_read");
        event.detail = format!("case {id}");
        event.outcome = match &found {
            Ok(c) => {
                event.patient_id = c.patient_id.clone();
                event.study_uid = c.study_uid.clone();
                "answered".into()
            }
            Err(_) => {
                // The caller learns nothing, but the trail names whose case was tried, so an
                // auditor following a patient finds the attempt.
                if let Ok(Some(c)) = self.index.case(id).await {
                    event.patient_id = c.patient_id;
                    event.study_uid = c.study_uid;
                }
                "not found or outside the caller's scope".into()
            }
        };
        self.audit.record_required(event).await?;
        found
    }

    /// The other cases of the person `case` is about, among those `who` could open: those whose
    /// referral carries the same national personal code. Each keeps the demographics its own
    /// clinic sent; only the code, which names one person in the whole country, ties them.
    pub async fn same_person(
        &self,
        who: &Principal,
        case: &CaseRow,
    ) -> Result<Vec<CaseRow>, RoutingError> {
        let mut filter = CaseFilter {
            same_person_as: Some(case.referral_id.clone()),
            limit: 100,
            ..CaseFilter::default()
        };
        // The cases the caller could open: as on the worklist.
        match who.role {
            Role::Cardiologist => filter.centres = Some(vec![who.institution.clone()]),
            Role::Clinic => filter.clinics = Some(vec![who.institution.clone()]),
            Role::Admin | Role::Auditor => {}
        }
        let others = self.index.cases(&filter).await?;
        if !others.is_empty() {
            let mut event = catalog::event(who, "case_read");
            event.detail = format!(
                "cases {} of the person of case {}",
                others
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                case.id
            );
            event.patient_id = case.patient_id.clone();
            event.outcome = "answered".into();
            self.audit.record_required(event).await?;
        }
        Ok(others)
    }

    /// A reader takes a case from the worklist; another reader's live claim is a conflict.
    /// Claiming one's own case again renews the claim.
    pub async fn claim(&self, who: &Principal, id: &str) -> Result<CaseRow, RoutingError> {
        let mut event = catalog::event(who, "case_claimed");
        event.detail = format!("case {id}");
        let outcome = async {
            if who.role != Role::Cardiologist {
                return Err(RoutingError::Denied(Denied {
                    name: who.name.clone(),
                    role: who.role,
                    action: "claim a case",
                }));
            }
            let case = self.visible(who, id).await?;
            let now = now_micros();
            let expires = now + self.config.routing.claim_micros();
            let renewal = case.claimed_by == who.name;
            let journal = JournalEntry::of_case(
                &case,
                "claimed",
                &who.institution,
                &who.name,
                "",
                format!("case {} claimed", case.id),
            );
            let claimed = self
                .index
                .claim(id, &who.name, expires, (!renewal).then_some(&journal))
                .await?;
            let current = self.visible(who, id).await?;
            if claimed {
                Ok(current)
            } else if !current.reader.is_empty() && current.reader != who.name {
                Err(RoutingError::Conflict(format!(
                    "case {id} is assigned to {}; an administrator can re-route it",
                    current.reader
                )))
            } else if matches!(current.status.as_str(), "new" | "in_progress") {
                Err(RoutingError::Conflict(format!(
                    "case {id} is claimed by {} until {}",
                    current.claimed_by,
                    current
                        .claim_expires_at
                        .map_or("-".into(), crate::index::rfc3339)
                )))
            } else {
                Err(RoutingError::Conflict(format!(
                    "case {id} is {}, not open for reading",
                    current.status
                )))
            }
        }
        .await;
        if let Ok(c) = &outcome {
            event.patient_id = c.patient_id.clone();
            event.study_uid = c.study_uid.clone();
        }
        event.outcome = match &outcome {
            Ok(_) => "claimed".into(),
            Err(e) => format!("refused: {e}"),
        };
        self.audit.record(event).await;
        outcome
    }

    /// The claiming reader gives the case back to the worklist.
    pub async fn release(&self, who: &Principal, id: &str) -> Result<CaseRow, RoutingError> {
        let result = self.give_back(who, id).await;
        let detail = format!("case {id}");
        self.audit
            .refusal(who, "case_released", detail, result)
            .await
    }

    async fn give_back(&self, who: &Principal, id: &str) -> Result<CaseRow, RoutingError> {
        let case = self.visible(who, id).await?;
        let journal = JournalEntry::of_case(
            &case,
            "released",
            &who.institution,
            &who.name,
            "",
            format!("case {id} given back to the worklist"),
        );
        if !self.index.release(id, &who.name, &journal).await? {
            return Err(RoutingError::Conflict(format!(
                "case {id} is not claimed by {}",
                who.name
            )));
        }
        let mut event = catalog::event(who, "case_released");
        event.detail = format!("case {id}");
        event.patient_id = case.patient_id.clone();
        event.study_uid = case.study_uid.clone();
        event.outcome = "released".into();
        self.audit.record(event).await;
        self.visible(who, id).await
    }

    /// Marks a reader away (skipped by automatic assignment) or back: the reader themself or
    /// an administrator.
    pub async fn set_away(
        &self,
        who: &Principal,
        reader: &str,
        away: bool,
    ) -> Result<(), RoutingError> {
        let detail = format!("{reader} {}", if away { "away" } else { "available" });
        let own = who.role == Role::Cardiologist && who.name == reader;
        if !own {
            let permitted = self.policy.permit(who, Action::Administer);
            let kind = "reader_availability";
            (self
                .audit
                .refusal(who, kind, detail.clone(), permitted)
                .await)?;
        }
        self.index.set_away(reader, away, &who.name).await?;
        let mut event = catalog::event(who, "reader_availability");
        event.detail = detail;
        event.outcome = "done".into();
        self.audit.record(event).await;
        Ok(())
    }

    /// An administrator routes a study that has no referral (yet), by the rules, stating why.
    pub async fn route_study(
        &self,
        who: &Principal,
        study_uid: &str,
        reason: &str,
    ) -> Result<CaseRow, RoutingError> {
        let result = self.route_study_by_hand(who, study_uid, reason).await;
        let detail = format!("study {study_uid} without a referral");
        self.audit.refusal(who, "case_routed", detail, result).await
    }

    async fn route_study_by_hand(
        &self,
        who: &Principal,
        study_uid: &str,
        reason: &str,
    ) -> Result<CaseRow, RoutingError> {
        self.policy.permit(who, Action::Administer)?;
        if reason.trim().is_empty() {
            return Err(invalid(
                "reason",
                "routing without a referral needs a reason",
            ));
        }
        let candidate = self
            .index
            .study_candidate(study_uid)
            .await?
            .ok_or_else(|| RoutingError::NotFound(format!("study {study_uid}")))?;
        let case = self
            .route(candidate, &who.name, Some(reason))
            .await?
            .ok_or_else(|| {
                RoutingError::Conflict(format!("study {study_uid} has a case already"))
            })?;
        let mut event = catalog::event(who, "case_routed");
        event.detail = format!("study {study_uid} without a referral: {reason}");
        event.study_uid = study_uid.to_owned();
        event.patient_id = case.patient_id.clone();
        event.outcome = format!("{} ({})", case.status, case.rule);
        self.audit.record(event).await;
        Ok(case)
    }

    /// An administrator sends an open case to another centre (within a contract) or reader.
    pub async fn reroute(
        &self,
        who: &Principal,
        id: &str,
        centre: &str,
        reader: &str,
        reason: &str,
    ) -> Result<CaseRow, RoutingError> {
        let result = self.reroute_by_hand(who, id, centre, reader, reason).await;
        let detail = format!("case {id} to {centre}");
        self.audit.refusal(who, "case_routed", detail, result).await
    }

    async fn reroute_by_hand(
        &self,
        who: &Principal,
        id: &str,
        centre: &str,
        reader: &str,
        reason: &str,
    ) -> Result<CaseRow, RoutingError> {
        self.policy.permit(who, Action::Administer)?;
        if reason.trim().is_empty() {
            return Err(invalid("reason", "re-routing needs a reason"));
        }
        let case = self.visible(who, id).await?;
        let contracted = self
            .config
            .centre(centre)
            .is_some_and(|c| c.reads.contains(&case.clinic_id));
        if !contracted {
            return Err(invalid(
                "centre",
                format!(
                    "centre `{centre}` has no contract to read clinic `{}`",
                    case.clinic_id
                ),
            ));
        }
        // An administrator's choice may name a reader marked away: away only stops automatic
        // assignment.
        if !reader.is_empty()
            && !self
                .index
                .centre_readers(centre, true)
                .await?
                .iter()
                .any(|r| r == reader)
        {
            return Err(invalid(
                "reader",
                format!("`{reader}` is not an enabled cardiologist of `{centre}`"),
            ));
        }
        let detail = format!(
            "re-routed from {} to {} ({}): {reason}",
            if case.centre_id.is_empty() {
                "nowhere"
            } else {
                &case.centre_id
            },
            centre,
            if reader.is_empty() {
                "the shared worklist"
            } else {
                reader
            }
        );
        let journal = JournalEntry::of_case(&case, "routed", centre, &who.name, "", detail.clone());
        let rule = format!("re-routed by {}", who.name);
        if !self
            .index
            .reroute(id, centre, reader, &rule, &journal)
            .await?
        {
            return Err(RoutingError::Conflict(format!(
                "case {id} is {}, no longer open",
                case.status
            )));
        }
        let mut event = catalog::event(who, "case_routed");
        event.detail = format!("case {id}: {detail}");
        event.study_uid = case.study_uid.clone();
        event.patient_id = case.patient_id.clone();
        event.outcome = "done".into();
        self.audit.record(event).await;
        self.visible(who, id).await
    }
}

/// Today's date, `YYYYMMDD` (UTC).
fn today() -> String {
    crate::index::hl7_timestamp(now_micros())
        .chars()
        .take(8)
        .collect()
}
