//! The registration client (RFC 3261 s10.2) for one contact: REGISTER with one
//! Call-ID and a rising CSeq; a digest challenge (401 or 407) answered with
//! [`DigestChallenge`] — each nonce once, at most twice in a row, then the
//! nonce reused with a rising nonce count on the refreshes (RFC 7616 s3.4);
//! 423 answered with the registrar's Min-Expires; the binding refreshed at 4/5
//! of the lifetime granted; a refusal or silence tried again after a backoff
//! that doubles from `retry_min` to `retry_max` with jitter (RFC 5626 s4.5
//! style); and unregistering (Expires: 0).

use std::time::{Duration, Instant};

use crate::auth::DigestChallenge;
use crate::endpoint::Endpoint;
use crate::message::{Method, NameAddr, Request, Response, Uri};
use crate::transaction::ClientKey;
use crate::transport::Flow;

/// What to register: one contact at one registrar.
#[derive(Debug, Clone)]
pub struct RegistrationSpec {
    /// Where REGISTER goes.
    pub flow: Flow,
    /// The registrar's URI (the Request-URI), e.g. `sip:example.com`.
    pub registrar: String,
    /// Our address of record (From and To), e.g. `sip:relay@example.com`.
    pub aor: String,
    /// The user part of the contact registered (its host and port are ours).
    pub contact_user: String,
    /// Digest user name.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// The lifetime asked for.
    pub expires: Duration,
}

/// What became of a REGISTER exchange.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Another REGISTER went out (a challenge answered, a longer lifetime).
    Sent(ClientKey),
    /// Registered for this long.
    Registered(Duration),
    /// Refused or unanswered with this status; tried again in `retry_in`.
    Failed {
        /// The status.
        status: u16,
        /// The wait.
        retry_in: Duration,
    },
    /// The contact is unregistered (or the registrar was not told: it forgets).
    Unregistered,
}

/// The challenge we answer, and how many requests answered its nonce.
#[derive(Debug)]
struct Auth {
    /// `Authorization` or `Proxy-Authorization`.
    header: &'static str,
    challenge: DigestChallenge,
    count: u32,
}

#[derive(Debug)]
enum State {
    /// A REGISTER is out; `challenges` answered since the round began.
    Sending {
        key: ClientKey,
        challenges: u8,
        removing: bool,
    },
    /// Registered; refreshed at `refresh_at`.
    Registered { refresh_at: Instant },
    /// Waiting to try again.
    Waiting { retry_at: Instant },
}

/// One contact's registration.
#[derive(Debug)]
pub(super) struct Registration {
    spec: RegistrationSpec,
    /// Our contact URI.
    contact: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The lifetime asked for (raised by a 423).
    expires: Duration,
    auth: Option<Auth>,
    state: State,
    failures: u32,
    retry_min: Duration,
    retry_max: Duration,
}

impl Registration {
    /// Starts registering at `now`, retrying after `retry_min` doubling up to
    /// `retry_max`; the first REGISTER's transaction.
    pub(super) fn start(
        now: Instant,
        endpoint: &mut Endpoint,
        spec: RegistrationSpec,
        (retry_min, retry_max): (Duration, Duration),
    ) -> (Self, ClientKey) {
        let contact = endpoint.uri(spec.flow.kind, Some(&spec.contact_user), "");
        let mut registration = Self {
            contact,
            call_id: endpoint.new_call_id(),
            from_tag: endpoint.new_tag(),
            cseq: 0,
            expires: spec.expires,
            auth: None,
            spec,
            // Replaced at once by the first send.
            state: State::Waiting { retry_at: now },
            failures: 0,
            retry_min,
            retry_max,
        };
        let key = registration.send(now, endpoint, 0, false);
        (registration, key)
    }

    /// Whether the contact is registered.
    pub(super) fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    /// Sends a REGISTER (`removing`: with Expires 0) as the `challenges`-th of
    /// its round.
    fn send(&mut self, now: Instant, endpoint: &mut Endpoint, challenges: u8, removing: bool) -> ClientKey {
        self.cseq += 1;
        let spec = &self.spec;
        let mut request = Request::new(Method::Register, &spec.registrar);
        request.headers.push("Max-Forwards", "70");
        request
            .headers
            .push("From", &format!("<{}>;tag={}", spec.aor, self.from_tag));
        request.headers.push("To", &format!("<{}>", spec.aor));
        request.headers.push("Call-ID", &self.call_id);
        request.headers.push("CSeq", &format!("{} REGISTER", self.cseq));
        request.headers.push("Contact", &format!("<{}>", self.contact));
        let expires = if removing { 0 } else { self.expires.as_secs() };
        request.headers.push("Expires", &expires.to_string());
        if let Some(auth) = self.auth.as_mut() {
            auth.count += 1;
            let cnonce = endpoint.new_tag();
            let value = auth.challenge.answer(
                "REGISTER",
                &spec.registrar,
                &spec.username,
                &spec.password,
                &cnonce,
                auth.count,
            );
            request.headers.push(auth.header, &value);
        }
        let key = endpoint.send_request(now, request, spec.flow);
        self.state = State::Sending {
            key: key.clone(),
            challenges,
            removing,
        };
        key
    }

    /// Whether `key` is the REGISTER we wait for; its round's state.
    fn waiting_for(&self, key: &ClientKey) -> Option<(u8, bool)> {
        match &self.state {
            State::Sending {
                key: ours,
                challenges,
                removing,
            } if ours == key => Some((*challenges, *removing)),
            _ => None,
        }
    }

    /// A response to one of our REGISTERs.
    pub(super) fn on_response(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        key: &ClientKey,
        response: &Response,
    ) -> Option<Outcome> {
        let (challenges, removing) = self.waiting_for(key)?;
        let status = response.status;
        match status {
            100..=199 => None,
            200..=299 if removing => Some(Outcome::Unregistered),
            200..=299 => {
                let granted = self.granted(response);
                self.failures = 0;
                self.state = State::Registered {
                    refresh_at: now + (granted * 4 / 5).max(Duration::from_secs(1)),
                };
                Some(Outcome::Registered(granted))
            }
            401 | 407 => match self.take_challenge(response, challenges) {
                true => Some(Outcome::Sent(self.send(now, endpoint, challenges + 1, removing))),
                false => Some(self.fail(now, endpoint, status, removing)),
            },
            423 => {
                let asked = response
                    .headers
                    .get("Min-Expires")
                    .and_then(|m| m.trim().parse().ok())
                    .map(Duration::from_secs)
                    .filter(|min| *min > self.expires);
                match asked {
                    Some(min) => {
                        self.expires = min;
                        Some(Outcome::Sent(self.send(now, endpoint, challenges, removing)))
                    }
                    None => Some(self.fail(now, endpoint, status, removing)),
                }
            }
            _ => Some(self.fail(now, endpoint, status, removing)),
        }
    }

    /// No response (408) or the transport failed (503).
    pub(super) fn on_failure(
        &mut self,
        now: Instant,
        endpoint: &mut Endpoint,
        key: &ClientKey,
        status: u16,
    ) -> Option<Outcome> {
        let (_, removing) = self.waiting_for(key)?;
        Some(self.fail(now, endpoint, status, removing))
    }

    /// Takes the challenge of a 401/407 if we answer it: a nonce not answered
    /// yet (or ours gone stale), at most twice in a row.
    fn take_challenge(&mut self, response: &Response, challenges: u8) -> bool {
        let (header, answer_in) = match response.status {
            407 => ("Proxy-Authenticate", "Proxy-Authorization"),
            _ => ("WWW-Authenticate", "Authorization"),
        };
        let Some(challenge) = response
            .headers
            .get_all(header)
            .into_iter()
            .find_map(DigestChallenge::parse)
        else {
            return false;
        };
        let answered = self
            .auth
            .as_ref()
            .is_some_and(|a| a.challenge.nonce == challenge.nonce);
        if challenges >= 2 || (answered && !challenge.stale) {
            return false;
        }
        self.auth = Some(Auth {
            header: answer_in,
            challenge,
            count: 0,
        });
        true
    }

    fn fail(&mut self, now: Instant, endpoint: &mut Endpoint, status: u16, removing: bool) -> Outcome {
        if removing {
            return Outcome::Unregistered;
        }
        self.failures += 1;
        let doublings = self.failures.saturating_sub(1).min(16);
        let backoff = (self.retry_min * 2u32.pow(doublings)).min(self.retry_max);
        // Jitter: 51-100 % of the backoff, so that relays restarted together spread out.
        let retry_in = backoff * (50 + endpoint.random_below(51)) / 100;
        self.state = State::Waiting {
            retry_at: now + retry_in,
        };
        Outcome::Failed { status, retry_in }
    }

    /// The lifetime the registrar granted our contact: its `expires` in the
    /// Contact of the 2xx that is ours, else the Expires header, else what we
    /// asked for.
    fn granted(&self, response: &Response) -> Duration {
        let ours = Uri::parse(&self.contact).ok();
        let same = |uri: &Uri| {
            ours.as_ref()
                .is_some_and(|o| o.user == uri.user && o.host == uri.host && o.port == uri.port)
        };
        let from_contact = response
            .headers
            .get_all("Contact")
            .into_iter()
            .filter_map(|c| NameAddr::parse(c).ok())
            .find(|c| c.parsed_uri().is_some_and(|u| same(&u)))
            .and_then(|c| c.param("expires").and_then(|e| e.parse().ok()));
        let from_header = response
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse().ok());
        from_contact
            .or(from_header)
            .map_or(self.expires, Duration::from_secs)
    }

    /// The next refresh or retry.
    pub(super) fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Registered { refresh_at } => Some(refresh_at),
            State::Waiting { retry_at } => Some(retry_at),
            State::Sending { .. } => None,
        }
    }

    /// Refreshes or retries when due; the REGISTER's transaction.
    pub(super) fn handle_timeout(&mut self, now: Instant, endpoint: &mut Endpoint) -> Option<ClientKey> {
        let due = self.deadline().is_some_and(|at| at <= now);
        due.then(|| self.send(now, endpoint, 0, false))
    }

    /// Unregisters the contact: a REGISTER with Expires 0.
    pub(super) fn unregister(&mut self, now: Instant, endpoint: &mut Endpoint) -> ClientKey {
        self.send(now, endpoint, 0, true)
    }
}
