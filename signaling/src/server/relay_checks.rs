//! The tokio edge of the relay health checks (`crate::health`): every relay that
//! registered through this node (its newest binding, from the lines snapshot) is
//! probed with OPTIONS through the transaction layer; the verdicts go to the
//! lines (so that routing skips a down relay's lines at once, and calls fail over
//! to another relay with a free line) and to the directory (`relays.state`,
//! `last_seen_at`), where the other nodes read them with their next snapshot.
//! Each node checks only the relays registered through it, so that N nodes do not
//! probe every relay N times.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use offhook_directory::Registration;
use rand::Rng;
use tokio::sync::mpsc;

use super::node::Node;
use super::now_ms;
use crate::health::{Health, HealthConfig, HealthOutput, ProbeId, RelayHealth};
use offhook_sip::legacy::ClientEvent;
use offhook_sip::message::{Method, Request};

/// The OPTIONS probe of a relay's contact.
fn probe(node: &Node, contact: &str, kind: offhook_sip::transport::TransportKind) -> Request {
    let tag: String = hex::encode(rand::rng().random::<[u8; 6]>());
    let mut request = Request::new(Method::Options, contact);
    request.headers.push("Via", &node.via(kind));
    request.headers.push("Max-Forwards", "70");
    request
        .headers
        .push("From", &format!("<sip:offhook@{}>;tag={tag}", node.host));
    request.headers.push("To", &format!("<{contact}>"));
    request
        .headers
        .push("Call-ID", &format!("{tag}-health@{}", node.host));
    request.headers.push("CSeq", "1 OPTIONS");
    request
}

/// Sends one probe; reports whether the relay answered (anything but 408/503).
async fn send_probe(
    node: Arc<Node>,
    registration: Registration,
    probe_id: ProbeId,
    answers: mpsc::UnboundedSender<(ProbeId, bool)>,
) {
    let alive = match node.flow_to_registration(&registration) {
        Some(flow) => match node
            .ctx
            .send(probe(&node, &registration.contact, flow.kind), flow)
            .await
        {
            Some((_, mut events)) => loop {
                match events.recv().await {
                    Some(ClientEvent::Response(r)) if r.status < 200 => continue,
                    Some(ClientEvent::Response(r)) => break !matches!(r.status, 408 | 503),
                    Some(ClientEvent::Timeout) | None => break false,
                }
            },
            None => false,
        },
        None => false,
    };
    let _ = answers.send((probe_id, alive));
}

/// Runs the checks until the node goes away.
pub(crate) async fn run(node: Arc<Node>, config: HealthConfig) {
    let mut core = RelayHealth::new(config);
    let (answers_tx, mut answers) = mpsc::unbounded_channel();
    let mut targets: HashMap<String, Registration> = HashMap::new();
    // The relay list is read again as often as relays are probed.
    let mut relist = tokio::time::interval(config.interval.min(Duration::from_secs(5)));
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        while let Some(output) = core.poll_output() {
            match output {
                HealthOutput::Probe { relay, probe } => match targets.get(&relay) {
                    Some(registration) => {
                        tokio::spawn(send_probe(
                            node.clone(),
                            registration.clone(),
                            probe,
                            answers_tx.clone(),
                        ));
                    }
                    None => core.handle_answer(Instant::now(), probe, false),
                },
                HealthOutput::Seen { relay } => {
                    let Some(registration) = targets.get(&relay) else {
                        continue;
                    };
                    let uri = format!("sip:{}", registration.source);
                    let directory = node.directory.clone();
                    tokio::spawn(async move {
                        if let Err(err) = directory.set_relay_seen(&relay, &uri, "up", now_ms()).await {
                            tracing::warn!(%err, relay, "health: cannot record a relay's answer");
                        }
                    });
                }
                HealthOutput::Changed { relay, health } => {
                    let up = health == Health::Up;
                    node.lines.set_relay_up(&relay, up);
                    if up {
                        tracing::info!(relay, "health: relay is up");
                    } else {
                        tracing::warn!(relay, "health: relay does not answer; its lines are skipped");
                        let directory = node.directory.clone();
                        tokio::spawn(async move {
                            if let Err(err) = directory.set_relay_state(&relay, "down").await {
                                tracing::warn!(%err, relay, "health: cannot record a relay down");
                            }
                        });
                    }
                }
            }
        }
        let far = tokio::time::Instant::now() + Duration::from_secs(3600);
        let deadline = core.poll_timeout().map_or(far, tokio::time::Instant::from_std);
        tokio::select! {
            Some((probe, alive)) = answers.recv() => core.handle_answer(Instant::now(), probe, alive),
            () = tokio::time::sleep_until(deadline) => core.handle_timeout(Instant::now()),
            _ = relist.tick() => {
                match node.lines.relays_of(Instant::now(), &node.config.node_id).await {
                    Ok(relays) => {
                        targets = relays.into_iter().collect();
                        core.set_relays(Instant::now(), targets.keys().map(String::as_str));
                    }
                    Err(err) => tracing::warn!(%err, "health: cannot list the relays"),
                }
            }
        }
    }
}
