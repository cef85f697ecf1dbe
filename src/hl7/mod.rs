//! The HL7 v2 edge: an MLLP listener for clinics' HIS systems.
//!
//! Accept loop → one task per connection → frames read one at a time → each message decoded
//! (MSH-18), read ([`message`]), its sender admitted (MSH-4 declared for a clinic, address in
//! the clinic's networks), then handed to the domain: orders to the referral service, ADT to
//! patient maintenance. Every message is answered with an ACK ([`ack`]) only after what it
//! caused is committed: AA when done, AE when its content is wrong (ERR says where and why), AR
//! when it is refused as a whole. This module maps domain results to acknowledgements and never
//! touches SQL or the object store.

pub mod ack;
pub mod admission;
pub mod message;
pub mod mllp;
mod order;
pub mod oru;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::Instrument;

use crate::access::{Principal, Role, Via};
use crate::audit::AuditTrail;
use crate::config::Config;
use crate::fault::Fault;
use crate::index::AuditEvent;
use crate::patients::{Change, PatientError, Patients};
use crate::referral::{ReferralError, Referrals};
use ack::AckCode;
use message::{code, Content, Header, Inbound, Problem};
use mllp::{Frame, FrameError};

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen for HL7 on {addr}: {source} (another instance? set hl7.listen or --hl7-port)"
)]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Everything a connection needs; shared by all of them.
#[derive(Clone)]
pub struct Hl7Context {
    pub config: Arc<Config>,
    pub referrals: Referrals,
    pub patients: Patients,
    pub audit: AuditTrail,
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

/// Accepts connections until `shutdown` turns true, then lets open ones finish their message.
pub async fn serve(listener: TcpListener, ctx: Hl7Context, mut shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    let open = crate::slots::Slots::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => match admission::admit(&open, &ctx.config.hl7, peer.ip()) {
                    Ok(slot) => {
                        let span = tracing::info_span!("mllp", %peer);
                        let work = connection(socket, peer, ctx.clone(), shutdown.clone());
                        tasks.spawn(
                            async move {
                                work.await;
                                drop(slot);
                            }
                            .instrument(span),
                        );
                    }
                    Err(refusal) => {
                        drop(socket);
                        // Audited beside the loop: a stranger's burst must not slow accepting.
                        let ctx = ctx.clone();
                        tasks.spawn(async move { refused(&ctx, peer, refusal).await });
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// A connection closed unread: logged and audited as a security event.
async fn refused(ctx: &Hl7Context, peer: SocketAddr, refusal: admission::Refusal) {
    tracing::warn!(%peer, reason = refusal.reason(), "HL7 connection refused");
    let mut event = AuditEvent::now("hl7_connection_refused", "", "", &peer.ip().to_string());
    event.outcome = refusal.label().to_owned();
    event.detail = refusal.reason().to_owned();
    ctx.audit.record(event).await;
}

async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    ctx: Hl7Context,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    let idle = Duration::from_secs(ctx.config.hl7.idle_timeout_secs);
    let limit = ctx.config.hl7.max_message_bytes;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle, mllp::read_frame(&mut reader, limit)) => next,
            // Between messages a shutdown closes the connection; a message being read is
            // finished and answered first (the select only wins while we wait for one).
            _ = shutdown.changed() => return,
        };
        let answer = match next {
            Err(_) => {
                tracing::info!("idle connection closed");
                return;
            }
            Ok(Ok(Frame::Closed)) => return,
            Ok(Ok(Frame::Message(bytes))) => handle(&ctx, &bytes, peer).await,
            Ok(Err(FrameError::TooLarge { limit })) => {
                let problem = Problem::reject(
                    code::APPLICATION_ERROR,
                    "",
                    format!("the message is over the limit of {limit} bytes; nothing was kept"),
                );
                refuse(&ctx, &Header::default(), &problem, peer, "").await
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "connection ended");
                return;
            }
        };
        if let Err(e) = mllp::write_frame(&mut write, answer.as_bytes()).await {
            tracing::info!(error = %e, "could not send the acknowledgement");
            return;
        }
    }
}

/// One message in, its acknowledgement out.
async fn handle(ctx: &Hl7Context, bytes: &[u8], peer: SocketAddr) -> String {
    // What the header says even if the rest cannot be read, to address the answer.
    let raw_header = Header {
        sending_application: message::msh_field(bytes, 3).unwrap_or_default(),
        sending_facility: message::msh_field(bytes, 4).unwrap_or_default(),
        control_id: message::msh_field(bytes, 10).unwrap_or_default(),
        version: message::msh_field(bytes, 12).unwrap_or_default(),
        trigger_event: message::msh_field(bytes, 9)
            .and_then(|t| t.split('^').nth(1).map(str::to_owned))
            .unwrap_or_default(),
        ..Header::default()
    };
    let inbound = match message::decode(bytes).and_then(|text| message::read(&text)) {
        Ok(inbound) => inbound,
        Err(problem) => return refuse(ctx, &raw_header, &problem, peer, "").await,
    };
    let who = match admit(ctx, &inbound.header, peer) {
        Ok(who) => who,
        Err(problem) => return refuse(ctx, &inbound.header, &problem, peer, "").await,
    };
    match act(ctx, &who, &inbound, bytes).await {
        Ok(text) => answer(&inbound.header, AckCode::Accept, &text, None),
        Err(problem) => refuse(ctx, &inbound.header, &problem, peer, &who.institution).await,
    }
}

/// The clinic a message speaks for: its sending facility must be declared, and the peer's
/// address within the sender's networks.
fn admit(ctx: &Hl7Context, header: &Header, peer: SocketAddr) -> Result<Principal, Problem> {
    let sender = ctx
        .config
        .hl7_sender(&header.sending_facility)
        .filter(|s| s.allows_address(peer.ip()))
        .ok_or_else(|| {
            Problem::reject(
                code::APPLICATION_ERROR,
                "MSH-4",
                format!(
                    "sending facility `{}` is not a declared HL7 sender for this address",
                    header.sending_facility
                ),
            )
        })?;
    Ok(Principal {
        name: if header.sending_application.is_empty() {
            header.sending_facility.clone()
        } else {
            format!("{}@{}", header.sending_application, header.sending_facility)
        },
        role: Role::Clinic,
        institution: sender.clinic.clone(),
        via: Via::Hl7,
        address: peer.ip().to_string(),
        pixel_access: false,
    })
}

/// An order message kept in the store, read again when the index is rebuilt: the clinic its
/// sending facility speaks for, and the referral it makes. The sender's address is not in the
/// store; it was checked when the message came in.
pub fn stored_order(
    config: &Config,
    bytes: &[u8],
) -> Result<(String, crate::referral::cda::Document027), Problem> {
    let inbound = message::decode(bytes).and_then(|text| message::read(&text))?;
    let sender = config
        .hl7_sender(&inbound.header.sending_facility)
        .ok_or_else(|| {
            Problem::reject(
                code::APPLICATION_ERROR,
                "MSH-4",
                format!(
                    "sending facility `{}` is not a declared HL7 sender",
                    inbound.header.sending_facility
                ),
            )
        })?;
    match &inbound.content {
        Content::Order(o) if o.control == "NW" => Ok((
            sender.clinic.clone(),
            order::document_of(o, &sender.clinic, &config.referral.oids),
        )),
        _ => Err(Problem::error(
            code::TABLE_VALUE_NOT_FOUND,
            "MSH-9",
            "not a new order (ORC-1 NW): it made no referral",
        )),
    }
}

/// Does what the message asks; the text for MSA-3 on success.
async fn act(
    ctx: &Hl7Context,
    who: &Principal,
    inbound: &Inbound,
    bytes: &[u8],
) -> Result<String, Problem> {
    match &inbound.content {
        Content::Order(o) => {
            if o.control != "NW" {
                return Err(Problem::error(
                    code::TABLE_VALUE_NOT_FOUND,
                    "ORC-1",
                    format!(
                        "order control `{}` is not taken: only NW (new order) makes a referral",
                        o.control
                    ),
                ));
            }
            let document = order::document_of(o, &who.institution, &ctx.config.referral.oids);
            let received = ctx
                .referrals
                .receive_order(who, &document, bytes)
                .await
                .map_err(referral_problem)?;
            let r = &received.referral;
            Ok(if received.created {
                format!("referral {} {}", r.id, r.status)
            } else {
                format!("order already received as referral {} ({})", r.id, r.status)
            })
        }
        Content::PatientUpdate(p) => {
            let ids: Vec<String> = p.ids.iter().map(|i| i.id.clone()).collect();
            match ctx
                .patients
                .update(who, &ids, &change_of(p), &inbound.header.control_id)
                .await
            {
                Ok(n) => Ok(format!("{n} patient record(s) updated")),
                // A HIS sends A08 for every patient it touches: one we never held is not an
                // error of the message.
                Err(PatientError::Unknown(_)) => {
                    Ok("no study of this clinic has the patient; nothing changed".into())
                }
                Err(e) => Err(patient_problem(e)),
            }
        }
        Content::Merge { survivor, prior } => {
            let survivor_id = order::primary_id(&survivor.ids, &ctx.config.referral.oids);
            // Identifiers the survivor keeps (e.g. the personal code, when two records of it are
            // merged by their record numbers) are not merged into themselves.
            let kept: Vec<&str> = survivor.ids.iter().map(|i| i.id.as_str()).collect();
            let prior: Vec<String> = prior
                .iter()
                .map(|i| i.id.clone())
                .filter(|id| !kept.contains(&id.as_str()))
                .collect();
            let merged = ctx
                .patients
                .merge(
                    who,
                    &survivor_id,
                    &prior,
                    &change_of(survivor),
                    &inbound.header.control_id,
                )
                .await
                .map_err(patient_problem)?;
            Ok(format!(
                "merged into {survivor_id}; {} study record(s) moved",
                merged.studies
            ))
        }
    }
}

fn change_of(p: &message::Patient) -> Change {
    Change {
        family_name: p.family_name.clone(),
        given_names: p.given_names.clone(),
        birth_date: p.birth_date.clone(),
        sex: p.sex.clone(),
    }
}

fn referral_problem(e: ReferralError) -> Problem {
    match e {
        ReferralError::Invalid(invalid) => {
            // Missing (101), or present but wrong, such as a bad check digit (102).
            let missing =
                invalid.message.contains("missing") || invalid.message.contains("neither");
            let (location, code) = match invalid.field.as_str() {
                "personal_code" | "statistical_card" | "insured_code" if missing => {
                    ("PID-3", code::REQUIRED_FIELD_MISSING)
                }
                "personal_code" | "statistical_card" | "insured_code" => ("PID-3", code::DATA_TYPE),
                "birth_date" => ("PID-7", code::DATA_TYPE),
                "sex" => ("PID-8", code::DATA_TYPE),
                "order_number" | "id" => ("ORC-2", code::REQUIRED_FIELD_MISSING),
                "custodian" => ("MSH-4", code::APPLICATION_ERROR),
                _ => ("", code::APPLICATION_ERROR),
            };
            Problem::error(code, location, invalid.message)
        }
        other => match other.fault() {
            Fault::BadInput | Fault::NotFound => {
                Problem::error(code::APPLICATION_ERROR, "", other.to_string())
            }
            Fault::Forbidden => Problem::reject(code::APPLICATION_ERROR, "", other.to_string()),
            _ => Problem::reject(
                code::APPLICATION_ERROR,
                "",
                format!("not taken now, send again later: {other}"),
            ),
        },
    }
}

fn patient_problem(e: PatientError) -> Problem {
    match e.fault() {
        Fault::NotFound => Problem::error(code::UNKNOWN_KEY, "PID-3", e.to_string()),
        Fault::BadInput => Problem::error(code::DUPLICATE_KEY, "MRG-1", e.to_string()),
        Fault::Forbidden => Problem::reject(code::APPLICATION_ERROR, "", e.to_string()),
        _ => Problem::reject(
            code::APPLICATION_ERROR,
            "",
            format!("not taken now, send again later: {e}"),
        ),
    }
}

/// Audits a message we did not act on and answers it AE or AR.
async fn refuse(
    ctx: &Hl7Context,
    header: &Header,
    problem: &Problem,
    peer: SocketAddr,
    institution: &str,
) -> String {
    let actor = format!("{}@{}", header.sending_application, header.sending_facility);
    let mut event = AuditEvent::now(
        "hl7_message_refused",
        &actor,
        institution,
        &peer.ip().to_string(),
    );
    event.outcome = if problem.reject { "AR" } else { "AE" }.to_owned();
    event.detail = format!(
        "message {} ({}^{}): {} {}",
        header.control_id,
        header.message_code,
        header.trigger_event,
        problem.location,
        problem.message
    );
    ctx.audit.record(event).await;
    tracing::info!(control_id = %header.control_id, location = %problem.location, reason = %problem.message, "HL7 message refused");
    let code = if problem.reject {
        AckCode::Reject
    } else {
        AckCode::Error
    };
    answer(header, code, &problem.message, Some(problem))
}

fn answer(header: &Header, code: AckCode, text: &str, problem: Option<&Problem>) -> String {
    let stamp = crate::index::hl7_timestamp(crate::index::now_micros());
    let control_id = uuid::Uuid::now_v7().simple().to_string();
    ack::ack(header, code, text, problem, &control_id[..20], &stamp)
}
