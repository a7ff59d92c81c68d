//! The signaling server: the tokio edge of the node core ([`crate::node`]). It
//! binds the configured transports, reads the node's keys from the directory,
//! and runs one loop ([`driver`]) that feeds the core with what arrives, performs
//! its directory outputs, and sleeps until its next deadline.
#![allow(
    clippy::disallowed_methods,
    reason = "an edge: it reads the real clock and the OS generator"
)]

pub mod directory;
mod driver;

use std::net::SocketAddr;
use std::sync::Arc;

use offhook_directory::Directory;
use offhook_sip::Stats;
use offhook_sip::driver::{BindError, Listen, SipSockets};
use offhook_sip::transport::TransportKind;

use crate::config::SignalingConfig;
use crate::node::{Node, OwnerId, Start};

/// Name of the directory secret that signs digest nonces (shared by all nodes).
pub const NONCE_SECRET: &str = "digest-nonce";
/// Name of the directory secret that signs Record-Route flow tokens.
pub const FLOW_TOKEN_SECRET: &str = "flow-token";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A transport could not bind, or TLS is unusable.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] offhook_directory::DirectoryError),
    /// A setting has a value the server cannot use.
    #[error("setting {0}")]
    Setting(String),
}

/// The addresses this node listens on, per transport.
#[derive(Debug, Clone, Default)]
pub struct Bound {
    /// UDP.
    pub udp: Option<SocketAddr>,
    /// TCP.
    pub tcp: Option<SocketAddr>,
    /// WebSocket.
    pub ws: Option<SocketAddr>,
    /// TLS.
    pub tls: Option<SocketAddr>,
    /// Secure WebSocket.
    pub wss: Option<SocketAddr>,
}

impl Bound {
    fn of(sockets: &SipSockets) -> Self {
        Self {
            udp: sockets.address(TransportKind::Udp),
            tcp: sockets.address(TransportKind::Tcp),
            ws: sockets.address(TransportKind::Ws),
            tls: sockets.address(TransportKind::Tls),
            wss: sockets.address(TransportKind::Wss),
        }
    }
}

/// A running signaling server.
#[derive(Debug)]
pub struct Server {
    /// The addresses it listens on.
    pub bound: Bound,
    /// Its SIP counters.
    pub stats: Arc<Stats>,
    writer: offhook_directory::CallWriter,
    directory: Directory,
    /// This start's owner id in the directory.
    owner: String,
    task: tokio::task::JoinHandle<()>,
    drain: Option<tokio::sync::oneshot::Sender<()>>,
    drain_grace: std::time::Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Binds every configured transport and starts serving.
    pub async fn start(config: SignalingConfig, directory: Directory) -> Result<Self, StartError> {
        let listen = Listen {
            udp: config.udp,
            tcp: config.tcp,
            ws: config.ws,
            tls: config.tls,
            wss: config.wss,
            tls_files: config.tls_cert.clone().zip(config.tls_key.clone()),
            max_message: config.max_message_bytes,
            limits: config.connection_limits(),
        };
        let sockets = SipSockets::bind(&listen).await?;
        let bound = Bound::of(&sockets);
        let host = if config.host.is_empty() {
            sockets
                .bound()
                .first()
                .map_or("127.0.0.1".to_owned(), |(_, a)| a.ip().to_string())
        } else {
            config.host.clone()
        };
        let clock = driver::clock();
        let owner = OwnerId {
            id: directory
                .start_owner(&config.node_id, clock.1, config.owner_lease())
                .await?,
            name: config.node_id.clone(),
        };
        let start = Start {
            call_token_secret: directory
                .shared_secret(offhook_directory::call_tokens::SECRET_NAME)
                .await?,
            nonce_secret: directory.shared_secret(NONCE_SECRET).await?,
            flow_token_secret: directory.shared_secret(FLOW_TOKEN_SECRET).await?,
            host,
            clock,
            seed: rand::random(),
            owner: owner.clone(),
        };
        let drain_grace = config.drain_grace();
        let mut node = Node::new(config, start).map_err(StartError::Setting)?;
        sockets.bind_endpoint(node.endpoint());
        let stats = node.endpoint().stats();
        let writer = directory.call_writer(&owner.id);
        let (drain, drained) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(driver::run(
            node,
            sockets,
            directory.clone(),
            writer.clone(),
            drained,
        ));
        Ok(Self {
            bound,
            stats,
            writer,
            directory,
            owner: owner.id,
            task,
            drain: Some(drain),
            drain_grace,
        })
    }

    /// Everything the calls changed so far is in the directory (CDRs and line
    /// states are written behind the calls).
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Drains (new calls refused; the calls in progress go on for `drain_s`,
    /// then both sides of each get a BYE and their CDRs end), stops serving, and
    /// writes what is still queued for the directory. Returns within `drain_s`
    /// and a few seconds more, whatever the peers do.
    pub async fn shutdown(mut self) {
        if let Some(drain) = self.drain.take() {
            let _ = drain.send(());
        }
        let limit = self.drain_grace + driver::AFTER_DRAIN;
        let drained = tokio::time::timeout(limit, &mut self.task).await.is_ok();
        if !drained {
            tracing::warn!("signaling did not drain in time: stopping");
            self.task.abort();
        }
        self.writer.close().await;
        // Every call ended and is written: nothing is left for a reaper. (When
        // the drain was cut short, the owner stays, and the next start of this
        // node or another node's reaper closes what is left.)
        if drained && let Err(err) = self.directory.end_owner(&self.owner).await {
            tracing::warn!(%err, "cannot remove this node's owner record");
        }
    }
}
