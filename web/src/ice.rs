//! STUN/TURN servers for the widget's RTCPeerConnection (`[web.ice]`), with
//! short-lived TURN credentials in the TURN REST API shared-secret scheme that
//! coturn implements (`use-auth-secret`, `static-auth-secret`): the username is
//! `<expiry unix time>:<id>`, the password base64(HMAC-SHA1(secret, username)).
//! The click API hands them out with each grant; the TURN server checks them
//! with the same secret, and refuses them once the expiry has passed.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use offhook_vocab::Secret;
use serde::{Deserialize, Serialize};
use sha1::Sha1;

/// `[web.ice]`: what browsers are told to gather candidates with.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IceConfig {
    /// STUN URLs (`stun:turn.example.net:3478`), given without credentials.
    pub stun: Vec<String>,
    /// TURN URLs, e.g. `turn:turn.example.net:3478?transport=udp`,
    /// `turn:turn.example.net:3478?transport=tcp`, `turns:turn.example.net:5349`;
    /// given with credentials, and only when `turn_secret` is set.
    pub turn: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub turn_secret: Option<String>,
    /// How long handed-out TURN credentials stay valid, in seconds.
    pub credential_ttl_s: u64,
}

impl Default for IceConfig {
    fn default() -> Self {
        Self {
            stun: Vec::new(),
            turn: Vec::new(),
            turn_secret: None,
            credential_ttl_s: 600,
        }
    }
}

impl std::fmt::Debug for IceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceConfig")
            .field("stun", &self.stun)
            .field("turn", &self.turn)
            .field("turn_secret", &self.turn_secret.as_ref().map(|_| "<redacted>"))
            .field("credential_ttl_s", &self.credential_ttl_s)
            .finish()
    }
}

/// One entry of `RTCConfiguration.iceServers`, as the widget passes it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// The server's URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The servers of a process, the TURN secret kept out of logs.
#[derive(Debug, Clone, Default)]
pub struct IceServers {
    stun: Vec<String>,
    turn: Vec<String>,
    secret: Option<Secret>,
    ttl_s: u64,
}

impl IceServers {
    /// From the configuration (TURN URLs without a secret are left out: they
    /// could never authenticate).
    pub fn new(config: &IceConfig) -> Self {
        let secret = config.turn_secret.as_deref().filter(|s| !s.is_empty());
        if secret.is_none() && !config.turn.is_empty() {
            tracing::warn!("web.ice.turn is set without web.ice.turn_secret: TURN servers not offered");
        }
        Self {
            stun: config.stun.clone(),
            turn: config.turn.clone(),
            secret: secret.map(Secret::new),
            ttl_s: config.credential_ttl_s,
        }
    }

    /// The list for one grant at `now_unix` (seconds), credentials named after `id`.
    pub fn for_grant(&self, now_unix: i64, id: &str) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if let Some(secret) = self.secret.as_ref().filter(|_| !self.turn.is_empty()) {
            let expiry = now_unix.saturating_add(i64::try_from(self.ttl_s).unwrap_or(i64::MAX));
            let (username, password) = turn_credentials(secret, expiry, id);
            servers.push(IceServer {
                urls: self.turn.clone(),
                username: Some(username),
                credential: Some(password),
            });
        }
        servers
    }
}

/// TURN REST API credentials valid until `expiry` (unix seconds).
pub fn turn_credentials(secret: &Secret, expiry: i64, id: &str) -> (String, String) {
    let username = format!("{expiry}:{id}");
    // HMAC takes a key of any length: new_from_slice cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose()).expect("HMAC accepts any key length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_match_an_independent_computation() {
        // python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
        //   b'coturn-shared-secret', b'1700000600:offhook', hashlib.sha1).digest()).decode())"
        let secret = Secret::new("coturn-shared-secret");
        let (username, password) = turn_credentials(&secret, 1_700_000_600, "offhook");
        assert_eq!(username, "1700000600:offhook");
        assert_eq!(password, "ymb1XZ8J9sAykE1XjlWcTGijNX8=");
    }

    #[test]
    fn a_grant_gets_stun_and_turn_expiring_after_the_ttl() {
        let servers = IceServers::new(&IceConfig {
            stun: vec!["stun:turn.example.net:3478".into()],
            turn: vec![
                "turn:turn.example.net:3478?transport=udp".into(),
                "turns:turn.example.net:5349?transport=tcp".into(),
            ],
            turn_secret: Some("coturn-shared-secret".into()),
            credential_ttl_s: 600,
        });
        let list = servers.for_grant(1_700_000_000, "offhook");
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].urls, ["stun:turn.example.net:3478"]);
        assert_eq!(list[0].username, None);
        assert_eq!(list[1].urls.len(), 2);
        assert_eq!(list[1].username.as_deref(), Some("1700000600:offhook"));
        assert_eq!(
            list[1].credential.as_deref(),
            Some("ymb1XZ8J9sAykE1XjlWcTGijNX8=")
        );
        let json = serde_json::to_value(&list[0]).unwrap();
        assert!(
            json.get("username").is_none(),
            "STUN carries no credentials: {json}"
        );
    }

    #[test]
    fn turn_without_a_secret_is_not_offered_and_the_secret_is_not_logged() {
        let config = IceConfig {
            turn: vec!["turn:turn.example.net:3478".into()],
            turn_secret: Some(String::new()),
            ..IceConfig::default()
        };
        assert!(IceServers::new(&config).for_grant(0, "x").is_empty());
        let config = IceConfig {
            turn_secret: Some("hunter2".into()),
            ..config
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", IceServers::new(&config)).contains("hunter2"));
    }
}
