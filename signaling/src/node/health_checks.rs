//! The relays' health checks on the node (the sans-IO [`crate::health`] core
//! wired to the endpoint): every relay that registered through this node (its
//! newest binding in the lines snapshot) is probed with OPTIONS; an answer other
//! than 408/503 is alive. The verdicts go to the lines (routing skips a down
//! relay's lines at once, and calls fail over to another relay's line; the
//! calls on a relay found down end `relay-lost`) and to the
//! directory (`relays.state`, `last_seen_at`), where the other nodes read them
//! with their next snapshot. Each node checks only the relays registered through
//! it, so that N nodes do not probe every relay N times.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use std::sync::Arc;

use offhook_directory::RoutableLine;
use offhook_sip::message::{Method, Request};
use offhook_sip::transaction::ClientKey;

use super::Node;
use super::directory_io::Record;
use crate::health::{Health, HealthConfig, HealthOutput, ProbeId, RelayHealth};

/// The checks and what they probe.
#[derive(Debug)]
pub(crate) struct HealthChecks {
    core: RelayHealth,
    /// The relay list is read from the lines snapshot this often.
    relist_every: Duration,
    relist_at: Instant,
    targets: HashMap<String, Arc<RoutableLine>>,
    probes: HashMap<ClientKey, ProbeId>,
}

impl HealthChecks {
    /// Checks that list their relays first at `start`.
    pub(crate) fn new(config: HealthConfig, start: Instant) -> Self {
        Self {
            core: RelayHealth::new(config),
            relist_every: config.interval.min(Duration::from_secs(5)),
            relist_at: start,
            targets: HashMap::new(),
            probes: HashMap::new(),
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        Some(
            self.core
                .poll_timeout()
                .map_or(self.relist_at, |at| at.min(self.relist_at)),
        )
    }
}

impl Node {
    /// The OPTIONS probe of a relay's contact.
    fn probe(&mut self, contact: &str) -> Request {
        let tag = self.endpoint.new_tag();
        let call_id = self.endpoint.new_call_id();
        let mut request = Request::new(Method::Options, contact);
        request.headers.push("Max-Forwards", "70");
        let from = format!("<sip:offhook@{}>;tag={tag}", self.endpoint.host());
        request.headers.push("From", &from);
        request.headers.push("To", &format!("<{contact}>"));
        request.headers.push("Call-ID", &call_id);
        request.headers.push("CSeq", "1 OPTIONS");
        request
    }

    pub(super) fn health_timeout(&mut self, now: Instant) {
        let Some(checks) = self.health.as_mut() else {
            return;
        };
        if checks.relist_at <= now {
            checks.relist_at = now + checks.relist_every;
            checks.targets = self.lines.relays_of(&self.config.node_id).into_iter().collect();
            checks
                .core
                .set_relays(now, checks.targets.keys().map(String::as_str));
        }
        checks.core.handle_timeout(now);
        self.health_outputs(now);
    }

    fn health_outputs(&mut self, now: Instant) {
        loop {
            let Some(output) = self.health.as_mut().and_then(|c| c.core.poll_output()) else {
                return;
            };
            match output {
                HealthOutput::Probe { relay, probe } => self.send_probe(now, &relay, probe),
                HealthOutput::Seen { relay } => {
                    let Some(uri) = self
                        .health
                        .as_ref()
                        .and_then(|c| c.targets.get(&relay))
                        .map(|r| format!("sip:{}", r.registration.source))
                    else {
                        continue;
                    };
                    let at = self.wall_ms(now);
                    self.record(Record::RelaySeen { relay, uri, at });
                }
                HealthOutput::Changed { relay, health } => {
                    let up = health == Health::Up;
                    self.lines.set_relay_up(&relay, up);
                    if up {
                        tracing::info!(relay, "health: relay is up");
                    } else {
                        tracing::warn!(relay, "health: relay does not answer; its lines are skipped");
                        let lines = self.lines.lines_of_relay(&relay);
                        self.relay_lost(now, &lines);
                        self.record(Record::RelayDown { relay });
                    }
                }
            }
        }
    }

    fn send_probe(&mut self, now: Instant, relay: &str, probe: ProbeId) {
        let target = self.health.as_ref().and_then(|c| c.targets.get(relay)).cloned();
        let flow = target.as_ref().and_then(|line| {
            self.connections
                .to_registration(&self.endpoint, &self.config.node_id, &line.registration)
        });
        let (Some(line), Some(flow)) = (target, flow) else {
            if let Some(checks) = self.health.as_mut() {
                checks.core.handle_answer(now, probe, false);
            }
            return;
        };
        let mut request = self.probe(&line.registration.contact);
        offhook_sip::trust::sign(line.relay_key.expose(), &mut request, self.wall_ms(now));
        let client = self.endpoint.send_request(now, request, flow);
        if let Some(checks) = self.health.as_mut() {
            checks.probes.insert(client, probe);
        }
    }

    /// A response (or a failure as 408/503) on a client transaction; true when
    /// it answered a probe.
    pub(super) fn health_response(
        &mut self,
        now: Instant,
        client: &ClientKey,
        status: Result<u16, &u16>,
    ) -> bool {
        let status = status.unwrap_or_else(|s| *s);
        let Some(checks) = self.health.as_mut() else {
            return false;
        };
        if status < 200 {
            return checks.probes.contains_key(client);
        }
        let Some(probe) = checks.probes.remove(client) else {
            return false;
        };
        checks
            .core
            .handle_answer(now, probe, !matches!(status, 408 | 503));
        self.health_outputs(now);
        true
    }
}
