//! The registrar (RFC 3261 s10.3) as decisions on the node: REGISTER for an
//! account of the tenant that owns the Request-URI's domain, digest-authenticated
//! (401, `stale=true` on an old or replayed nonce); bindings added, refreshed and
//! removed (`Expires: 0`, `*`) in the directory so every node sees them, with
//! the flow they came over (NAT source, WebSocket connection); the answer lists
//! the AOR's live bindings. A relay account's REGISTER also refreshes the lines
//! snapshot (its lines came or went) and records the relay as seen; one that
//! comes with a new Call-ID for a line is the relay started again, and the
//! call on that line, gone with the old process, ends `relay-lost`.

use std::time::Instant;

use offhook_directory::{AccountKind, Registration, Tenant};
use offhook_sip::message::{NameAddr, Request};
use offhook_sip::transaction::ServerKey;
use offhook_sip::transport::Flow;

use super::auth::{self, Challenger};
use super::directory_io::{Change, Changed, Record};
use super::view::found;
use super::{Node, Owner, Reply, Step};

/// Default expiry when the client names none (RFC 3261 s10.2.1.1).
const DEFAULT_EXPIRES: u32 = 3600;

/// A REGISTER in progress.
#[derive(Debug)]
pub(crate) struct Register {
    pub request: Request,
    flow: Flow,
    /// Set once its bindings are being stored: the account is a relay's.
    storing: Option<Stored>,
}

#[derive(Debug)]
struct Stored {
    relay: Option<String>,
}

/// What the registrar decided.
struct Decided {
    tenant: Tenant,
    aor: String,
    upserts: Vec<Registration>,
    removals: Vec<Option<String>>,
    relay: Option<String>,
}

impl Node {
    /// A new REGISTER.
    pub(super) fn register(&mut self, now: Instant, key: ServerKey, request: Request, flow: Flow) {
        self.registers.insert(
            key.clone(),
            Register {
                request,
                flow,
                storing: None,
            },
        );
        self.drive_register(now, &key, None);
    }

    pub(super) fn drive_register(&mut self, now: Instant, key: &ServerKey, changed: Option<Changed>) {
        let Some(register) = self.registers.get(key) else {
            return;
        };
        if register.storing.is_some() {
            return self.registered(now, key, changed);
        }
        let (request, flow) = (register.request.clone(), register.flow);
        match self.decide_register(now, &request, &flow) {
            Step::Done(decided) => {
                if let Some(relay) = &decided.relay {
                    let restarted: Vec<String> = decided
                        .upserts
                        .iter()
                        .filter_map(|b| self.lines.rebound(relay, &b.contact_user, &b.call_id))
                        .collect();
                    self.relay_lost(now, &restarted);
                }
                let change = Change::Register {
                    tenant: decided.tenant.id.clone(),
                    aor: decided.aor,
                    upserts: decided.upserts,
                    removals: decided.removals,
                };
                if let Some(register) = self.registers.get_mut(key) {
                    register.storing = Some(Stored { relay: decided.relay });
                }
                self.change(change, Owner::Register(key.clone()));
            }
            Step::Need(query) => self.need(query, Owner::Register(key.clone())),
            Step::Reply(reply) => self.finish_register(now, key, reply),
            Step::Challenge { realm, stale } => {
                let reply = self.challenge(now, &request, &realm, stale, Challenger::Registrar);
                self.finish_register(now, key, reply);
            }
            Step::Failed { realm, user } => {
                let reply = self.auth_failed(now, flow.remote.ip(), &realm, &user);
                self.finish_register(now, key, reply);
            }
        }
    }

    fn finish_register(&mut self, now: Instant, key: &ServerKey, reply: Reply) {
        if let Some(register) = self.registers.remove(key) {
            self.reply(now, key, &register.request, reply);
        }
    }

    fn decide_register(&mut self, now: Instant, request: &Request, flow: &Flow) -> Step<Decided> {
        let Some(domain) = request.request_uri().map(|u| u.host) else {
            return Step::Reply(Reply::new(400, "Bad Request-URI"));
        };
        let tenant = found!(
            self.view.tenant_by_domain(now, &domain),
            Step::Reply(Reply::new(404, "Unknown domain"))
        );
        let now_secs = self.wall_secs(now);
        let checked = auth::check(
            &self.auth_ctx(now, flow.remote.ip()),
            request,
            &tenant,
            Challenger::Registrar,
        );
        let verified = match checked.decided() {
            Ok(verified) => verified,
            Err(step) => return step,
        };
        self.throttle
            .succeeded(flow.remote.ip(), &tenant.sip_domain, &verified.account.username);
        let Some(aor) = request
            .to()
            .and_then(|to| to.parsed_uri())
            .and_then(|u| u.user_unescaped())
        else {
            return Step::Reply(Reply::new(400, "Bad To"));
        };
        if aor != verified.account.username {
            return Step::Reply(Reply::new(403, "Credentials do not match the address of record"));
        }
        let decided = self.bindings(now, request, flow, &tenant, &aor);
        if matches!(decided, Step::Done(_)) && !verified.spend(&mut self.nonces, now_secs) {
            return Step::Challenge {
                realm: tenant.sip_domain.clone(),
                stale: true,
            };
        }
        match decided {
            Step::Done(mut decided) => {
                decided.relay = (verified.account.kind == AccountKind::Relay).then(|| aor.clone());
                Step::Done(decided)
            }
            other => other,
        }
    }

    /// The bindings a REGISTER asks for.
    fn bindings(
        &self,
        now: Instant,
        request: &Request,
        flow: &Flow,
        tenant: &Tenant,
        aor: &str,
    ) -> Step<Decided> {
        let header_expires = request
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u32>().ok());
        let contacts = request.headers.get_all("Contact");
        let mut decided = Decided {
            tenant: tenant.clone(),
            aor: aor.to_owned(),
            upserts: Vec::new(),
            removals: Vec::new(),
            relay: None,
        };
        if contacts.len() == 1 && contacts[0].trim() == "*" {
            if header_expires != Some(0) {
                return Step::Reply(Reply::new(400, "Wildcard Contact needs Expires: 0"));
            }
            decided.removals.push(None);
            return Step::Done(decided);
        }
        let wall = self.wall_ms(now);
        let cseq = i64::from(request.cseq().map_or(0, |c| c.number));
        for value in contacts {
            let Ok(contact) = NameAddr::parse(value) else {
                return Step::Reply(Reply::new(400, "Bad Contact"));
            };
            let expires = contact
                .param("expires")
                .and_then(|e| e.parse().ok())
                .or(header_expires)
                .unwrap_or(DEFAULT_EXPIRES);
            if expires != 0 && expires < self.config.min_expires_s {
                let reply = Reply::new(423, "Interval Too Brief")
                    .with("Min-Expires", self.config.min_expires_s.to_string());
                return Step::Reply(reply);
            }
            if expires == 0 {
                decided.removals.push(Some(contact.uri.clone()));
                continue;
            }
            let expires = expires.min(self.config.max_expires_s);
            decided.upserts.push(Registration {
                id: String::new(),
                tenant_id: tenant.id.clone(),
                aor: aor.to_owned(),
                contact_user: contact
                    .parsed_uri()
                    .and_then(|u| u.user_unescaped())
                    .unwrap_or_default(),
                contact: contact.uri.clone(),
                instance: contact
                    .param("+sip.instance")
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_owned(),
                transport: flow.kind.name().to_owned(),
                source: flow.remote.to_string(),
                node: self.config.node_id.clone(),
                connection: flow.conn.map(|c| c.to_string()).unwrap_or_default(),
                call_id: request.call_id().to_owned(),
                cseq,
                expires_at: wall + i64::from(expires) * 1000,
                updated_at: wall,
            });
        }
        Step::Done(decided)
    }

    /// The bindings are stored: answer with the AOR's live ones.
    fn registered(&mut self, now: Instant, key: &ServerKey, changed: Option<Changed>) {
        let Some(Changed::Bindings(bindings)) = changed else {
            return;
        };
        let Some(register) = self.registers.remove(key) else {
            return;
        };
        let wall = self.wall_ms(now);
        let mut reply = Reply::new(200, "OK");
        for b in bindings {
            let left = (b.expires_at - wall).max(0) / 1000;
            reply = reply.with("Contact", format!("<{}>;expires={left}", b.contact));
        }
        if let Some(relay) = register.storing.and_then(|s| s.relay) {
            // Its lines (or some of them) came or went: route with a new snapshot.
            self.lines.invalidate();
            self.record(Record::RelaySeen {
                relay,
                uri: format!("sip:{}", register.flow.remote),
                at: wall,
            });
        }
        self.reply(now, key, &register.request, reply);
    }
}
