//! Reading: the worklist (urgent first, waiting time, who holds a claim) and the case page
//! (the referral as a document to read, the patient's earlier cases, the study's series, the
//! reports with their editor and versions, and deliveries). A clinic opens the same case page
//! to follow its case and take the report home.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::clinic::{case_status, exam_key, person_name};
use super::{html, problem, Chrome, Visit};
use crate::access::Role;
use crate::index::{now_micros, CaseRow, DeliveryRow, ReferralRow, ReportRow};
use crate::routing::{RoutingError, WorklistQuery};
use crate::web::WebState;

pub struct WorkLine {
    pub id: String,
    pub urgent: bool,
    pub patient: String,
    pub birth_date: String,
    pub examination: &'static str,
    pub clinic: String,
    pub status: &'static str,
    pub waiting: String,
    pub reader: String,
    pub claimed_by: String,
    pub mine: bool,
    pub claimable: bool,
}

#[derive(Template)]
#[template(path = "worklist.html")]
struct WorklistPage {
    c: Chrome,
    lines: Vec<WorkLine>,
    filter: Filter,
    can_claim: bool,
    /// Which cases of the list this page shows (from 1), and the pages around it.
    first: usize,
    last: usize,
    previous: Option<String>,
    next: Option<String>,
}

/// Cases one worklist page shows: enough to see a day's work, few enough to stay quick.
const PAGE: usize = 200;

#[derive(Debug, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    urgency: String,
    #[serde(default)]
    examination: String,
    #[serde(default)]
    mine: String,
    /// From 1.
    #[serde(default)]
    page: Option<usize>,
}

impl Filter {
    /// This list's address on page `page`.
    fn href(&self, page: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", &self.status),
            ("urgency", &self.urgency),
            ("examination", &self.examination),
            ("mine", &self.mine),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            "/worklist".to_owned()
        } else {
            format!("/worklist?{query}")
        }
    }
}

const STATUSES: [&str; 5] = ["unrouted", "new", "in_progress", "reported", "delivered"];

pub async fn worklist(
    State(state): State<WebState>,
    visit: Visit,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let c = visit.chrome("worklist.title", "worklist");
    let who = &visit.who;
    if who.role == Role::Clinic {
        return problem(c, StatusCode::FORBIDDEN, "problem.role");
    }
    let filter = filter.map(|Query(f)| f).unwrap_or_default();
    let page = filter.page.unwrap_or(1).clamp(1, 10_000);
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    // One more than a page: whether there is a next page, without counting them all.
    let query = WorklistQuery {
        status: non_empty(&filter.status).filter(|s| STATUSES.contains(&s.as_str())),
        urgency: non_empty(&filter.urgency),
        examination: non_empty(&filter.examination),
        mine: filter.mine == "1",
        offset: ((page - 1) * PAGE) as i64,
        limit: Some(PAGE as i64 + 1),
        ..WorklistQuery::default()
    };
    let mut cases = match state.routing.worklist(who, &query).await {
        Ok(cases) => cases,
        Err(e) => {
            tracing::error!(error = %e, "worklist page");
            return problem(c, StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable");
        }
    };
    let more = cases.len() > PAGE;
    cases.truncate(PAGE);
    let first = (page - 1) * PAGE + 1;
    let last = (page - 1) * PAGE + cases.len();
    let previous = (page > 1).then(|| filter.href(page - 1));
    let next = more.then(|| filter.href(page + 1));
    let now = now_micros();
    let w = c.w;
    let lines = cases
        .iter()
        .map(|case| {
            let claim_active =
                !case.claimed_by.is_empty() && case.claim_expires_at.is_some_and(|t| t > now);
            let claimed_by = if claim_active {
                case.claimed_by.clone()
            } else {
                String::new()
            };
            WorkLine {
                id: case.id.clone(),
                urgent: matches!(case.urgency.as_str(), "urgent" | "emergency"),
                patient: person_name(&case.patient_name),
                birth_date: w.dicom_date(&case.birth_date),
                examination: exam_key(&case.examination),
                clinic: case.clinic_id.clone(),
                status: case_status(case),
                waiting: w.minutes((now - case.ready_at).max(0) / 60_000_000),
                reader: case.reader.clone(),
                mine: claimed_by == who.name,
                claimable: claimed_by.is_empty()
                    && matches!(case.status.as_str(), "new" | "in_progress" | "unrouted"),
                claimed_by,
            }
        })
        .collect();
    html(&WorklistPage {
        c,
        lines,
        filter,
        can_claim: who.role == Role::Cardiologist,
        first,
        last,
        previous,
        next,
    })
}

/// A report version as the case page shows it.
pub struct Version {
    pub id: String,
    pub version: i64,
    pub signer: String,
    pub signed_at: String,
    pub amendment_reason: String,
    pub findings: String,
    pub conclusion: String,
    pub recommendations: String,
    pub non_diagnostic: bool,
}

pub struct Delivery {
    pub channel: String,
    pub status: String,
    pub when: String,
    pub error: String,
}

pub struct Earlier {
    pub id: String,
    pub examination: &'static str,
    pub date: String,
    pub status: &'static str,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    c: Chrome,
    case: CaseRow,
    status: &'static str,
    patient: String,
    birth_date: String,
    age: String,
    referral: Option<ReferralRow>,
    referral_written: String,
    examination: &'static str,
    urgent: bool,
    earlier: Vec<Earlier>,
    versions: Vec<Version>,
    draft: Option<ReportRow>,
    /// The text the editor starts from: the caller's draft, else the latest signed version.
    start: Version,
    deliveries: Vec<Delivery>,
    can_write: bool,
    claimed_by_me: bool,
    signer_name: String,
    signer_licence: String,
    waiting: String,
}

fn version(r: &ReportRow, w: super::i18n::Words) -> Version {
    Version {
        id: r.id.clone(),
        version: r.version,
        signer: if r.signer_name.is_empty() {
            r.author.clone()
        } else {
            format!("{} ({})", r.signer_name, r.signer_licence)
        },
        signed_at: r.signed_at.map(|t| w.time(t)).unwrap_or_default(),
        amendment_reason: r.amendment_reason.clone(),
        findings: r.findings.clone(),
        conclusion: r.conclusion.clone(),
        recommendations: r.recommendations.clone(),
        non_diagnostic: r.non_diagnostic,
    }
}

fn delivery(d: &DeliveryRow, w: super::i18n::Words) -> Delivery {
    Delivery {
        channel: d.channel.clone(),
        status: d.status.clone(),
        when: d
            .delivered_at
            .or(d.last_attempt_at)
            .map(|t| w.time(t))
            .unwrap_or_default(),
        error: d.last_error.clone(),
    }
}

pub async fn case(State(state): State<WebState>, visit: Visit, Path(id): Path<String>) -> Response {
    let c = visit.chrome("case.title", "case");
    let who = &visit.who;
    let w = c.w;
    let case = match state.routing.case(who, &id).await {
        Ok(case) => case,
        Err(RoutingError::NotFound(_)) | Err(RoutingError::Denied(_)) => {
            return problem(c, StatusCode::NOT_FOUND, "problem.not_found")
        }
        Err(e) => {
            tracing::error!(error = %e, "case page");
            return problem(c, StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable");
        }
    };
    let referral = if case.referral_id.is_empty() {
        None
    } else {
        state.referrals.get(who, &case.referral_id).await.ok()
    };
    let earlier = state
        .routing
        .same_person(who, &case)
        .await
        .unwrap_or_default()
        .iter()
        .map(|other| Earlier {
            id: other.id.clone(),
            examination: exam_key(&other.examination),
            date: w.date(other.ready_at),
            status: case_status(other),
        })
        .collect();
    let reports = match state.reports.versions(who, &id).await {
        Ok(reports) => reports,
        Err(e) => {
            tracing::error!(error = %e, "case page: reports");
            return problem(c, StatusCode::SERVICE_UNAVAILABLE, "problem.unavailable");
        }
    };
    let deliveries = state
        .reports
        .deliveries_of_case(who, &id)
        .await
        .unwrap_or_default()
        .iter()
        .map(|d| delivery(d, w))
        .collect();
    let draft = reports
        .iter()
        .find(|r| r.status != "signed" && r.author == who.name)
        .cloned();
    let latest_signed = reports.iter().rev().find(|r| r.status == "signed");
    let start = draft
        .as_ref()
        .or(latest_signed)
        .map(|r| version(r, w))
        .unwrap_or(Version {
            id: String::new(),
            version: 0,
            signer: String::new(),
            signed_at: String::new(),
            amendment_reason: String::new(),
            findings: String::new(),
            conclusion: String::new(),
            recommendations: String::new(),
            non_diagnostic: false,
        });
    let user = state.index.user(&who.name).await.ok().flatten();
    let now = now_micros();
    let claimed_by_me =
        case.claimed_by == who.name && case.claim_expires_at.is_some_and(|t| t > now);
    let age = crate::routing::rules::age_on(&case.birth_date, &w.date(now).replace('-', ""))
        .map(|a| a.to_string())
        .unwrap_or_default();
    let page = CasePage {
        examination: exam_key(&case.examination),
        urgent: matches!(case.urgency.as_str(), "urgent" | "emergency"),
        status: case_status(&case),
        patient: person_name(&case.patient_name),
        birth_date: w.dicom_date(&case.birth_date),
        age,
        referral_written: referral
            .as_ref()
            .map(|r| w.dicom_date(&r.effective_time))
            .unwrap_or_default(),
        referral,
        earlier,
        versions: reports
            .iter()
            .filter(|r| r.status == "signed")
            .map(|r| version(r, w))
            .collect(),
        draft,
        start,
        deliveries,
        can_write: who.role == Role::Cardiologist,
        claimed_by_me,
        signer_name: user
            .as_ref()
            .map(|u| u.full_name.clone())
            .unwrap_or_default(),
        signer_licence: user.map(|u| u.licence).unwrap_or_default(),
        waiting: if matches!(case.status.as_str(), "reported" | "delivered") {
            String::new()
        } else {
            w.minutes((now - case.ready_at).max(0) / 60_000_000)
        },
        case,
        c,
    };
    html(&page)
}

#[derive(Template)]
#[template(path = "waveform.html")]
struct WaveformPage {
    c: Chrome,
    study: String,
    series: String,
    instance: String,
    back: String,
}

/// Our waveform viewer for one DICOM waveform object: the page draws what
/// `/api/waveforms/…` answers (scoped and audited there).
pub async fn waveform(
    visit: Visit,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Response {
    let c = visit.chrome("wave.title", "waveform");
    let uid = |u: &str| {
        !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    };
    if !(uid(&study) && uid(&series) && uid(&instance)) {
        return problem(c, StatusCode::NOT_FOUND, "problem.not_found");
    }
    let back = super::start_page(visit.who.role).to_owned();
    html(&WaveformPage {
        c,
        study,
        series,
        instance,
        back,
    })
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn a_worklist_page_keeps_its_filters_in_its_address() {
        let filter = Filter {
            status: "new".into(),
            urgency: "urgent".into(),
            mine: "1".into(),
            ..Filter::default()
        };
        assert_eq!(
            filter.href(3),
            "/worklist?status=new&urgency=urgent&mine=1&page=3"
        );
        assert_eq!(filter.href(1), "/worklist?status=new&urgency=urgent&mine=1");
        assert_eq!(Filter::default().href(1), "/worklist");
        let odd = Filter {
            examination: "a&b=c".into(),
            ..Filter::default()
        };
        assert_eq!(odd.href(2), "/worklist?examination=a%26b%3Dc&page=2");
    }
}
