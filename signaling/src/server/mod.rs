//! The signaling server: binds the configured transports, runs the event loop
//! ([`engine`]) and dispatches what it hands up to the registrar and the proxy,
//! each request in its own task.

mod auth_check;
mod cache;
mod lines;
mod node;
mod proxy;
mod registrar;
mod relay_checks;
mod route;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use offhook_directory::Directory;
use offhook_directory::limits::Limiter;
use offhook_sip::Stats;
use offhook_sip::auth::{DigestServer, MemoryNonceStore};
use offhook_sip::legacy::{Engine, Upcall};
use offhook_sip::transaction::{Timers, TransactionLayer};
use offhook_sip::transport::{self, Transports};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

pub use node::Bound;

use crate::config::SignalingConfig;
use cache::Lookups;
use lines::LinePool;
use node::Node;

/// Name of the directory secret that signs digest nonces (shared by all nodes).
pub const NONCE_SECRET: &str = "digest-nonce";

/// Milliseconds since the Unix epoch (the directory's time unit).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("cannot listen on {0}: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
    /// TLS is configured but unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The directory failed.
    #[error(transparent)]
    Directory(#[from] offhook_directory::DirectoryError),
    /// A setting has a value the server cannot use.
    #[error("setting {0}: {1}")]
    Setting(&'static str, String),
}

/// A running signaling server.
#[derive(Debug)]
pub struct Server {
    /// The addresses it listens on.
    pub bound: Bound,
    /// Its counters.
    pub stats: Arc<Stats>,
    writer: offhook_directory::CallWriter,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind_tcp(addr: std::net::SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind(addr, e))
}

impl Server {
    /// Binds every configured transport and starts serving.
    pub async fn start(config: SignalingConfig, directory: Directory) -> Result<Self, StartError> {
        let (inbound_tx, inbound) = mpsc::channel(4096);
        let transports = Transports::new(inbound_tx, config.max_message_bytes);
        let mut tasks = Vec::new();
        let mut bound = Bound::default();
        let spawn_logged = |name: &'static str,
                            fut: std::pin::Pin<
            Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>,
        >| {
            tokio::spawn(async move {
                if let Err(err) = fut.await {
                    tracing::error!(%err, transport = name, "transport stopped");
                }
            })
        };
        if let Some(addr) = config.udp {
            let socket = UdpSocket::bind(addr)
                .await
                .map_err(|e| StartError::Bind(addr, e))?;
            bound.udp = socket.local_addr().ok();
            tasks.push(spawn_logged(
                "udp",
                Box::pin(transport::serve_udp(socket, transports.clone())),
            ));
        }
        if let Some(addr) = config.tcp {
            let listener = bind_tcp(
                bound
                    .udp
                    .filter(|_| addr.port() == 0 && config.udp.is_some())
                    .unwrap_or(addr),
            )
            .await?;
            bound.tcp = listener.local_addr().ok();
            tasks.push(spawn_logged(
                "tcp",
                Box::pin(transport::serve_tcp(listener, transports.clone())),
            ));
        }
        if let Some(addr) = config.ws {
            let listener = bind_tcp(addr).await?;
            bound.ws = listener.local_addr().ok();
            tasks.push(spawn_logged(
                "ws",
                Box::pin(transport::serve_ws(listener, transports.clone())),
            ));
        }
        if config.tls.is_some() || config.wss.is_some() {
            let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
                return Err(StartError::Tls("tls/wss need tls_cert and tls_key".into()));
            };
            let acceptor = transport::load_tls_acceptor(cert, key).map_err(StartError::Tls)?;
            if let Some(addr) = config.tls {
                let listener = bind_tcp(addr).await?;
                bound.tls = listener.local_addr().ok();
                let serve = transport::serve_tls(listener, acceptor.clone(), transports.clone());
                tasks.push(spawn_logged("tls", Box::pin(serve)));
            }
            if let Some(addr) = config.wss {
                let listener = bind_tcp(addr).await?;
                bound.wss = listener.local_addr().ok();
                tasks.push(spawn_logged(
                    "wss",
                    Box::pin(transport::serve_wss(listener, acceptor, transports.clone())),
                ));
            }
        }
        let host = if config.host.is_empty() {
            [bound.udp, bound.tcp, bound.ws]
                .into_iter()
                .flatten()
                .next()
                .map_or("127.0.0.1".to_owned(), |a| a.ip().to_string())
        } else {
            config.host.clone()
        };
        let timers = Timers {
            t1: config.t1(),
            t2: config.t2(),
            t4: config.t4(),
        };
        let stats = Arc::new(Stats::default());
        let (upcalls_tx, mut upcalls) = mpsc::unbounded_channel();
        let engine = Engine::new(
            TransactionLayer::new(timers),
            transports.clone(),
            inbound,
            upcalls_tx,
            stats.clone(),
        );
        let digest_algorithms = config
            .digest_algorithms
            .iter()
            .map(|name| {
                offhook_sip::auth::algorithm_named(name).ok_or_else(|| {
                    StartError::Setting("digest_algorithms", format!("'{name}' is not MD5 or SHA-256"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let writer = directory.call_writer();
        let node = Arc::new(Node {
            lookups: Lookups::new(directory.clone(), config.directory_cache()),
            lines: Arc::new(LinePool::new(
                directory.clone(),
                writer.clone(),
                config.directory_cache(),
            )),
            writer: writer.clone(),
            digest: DigestServer::new(
                directory.shared_secret(NONCE_SECRET).await?,
                config.nonce_lifetime_s,
            )
            .with_algorithms(digest_algorithms, &config.md5_only_user_agents),
            call_token_secret: directory
                .shared_secret(offhook_directory::call_tokens::SECRET_NAME)
                .await?,
            config,
            directory,
            nonces: Mutex::new(MemoryNonceStore::default()),
            limiter: Mutex::new(Limiter::default()),
            host,
            bound: bound.clone(),
            calls: Mutex::new(HashMap::new()),
            ctx: engine.ctx(),
            transports,
        });
        tasks.push(tokio::spawn(engine.run()));
        if let Some(checks) = node.config.relay_checks() {
            tasks.push(tokio::spawn(relay_checks::run(node.clone(), checks)));
        }
        tasks.push(tokio::spawn(async move {
            while let Some(upcall) = upcalls.recv().await {
                dispatch(&node, upcall);
            }
        }));
        Ok(Self {
            bound,
            stats,
            writer,
            tasks,
        })
    }

    /// Everything the calls changed so far is in the directory (CDRs and line
    /// states are written behind the calls).
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Stops serving, then writes what is still queued for the directory.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.writer.close().await;
    }
}

/// Sends each request to its transaction user, in a task of its own.
fn dispatch(node: &Arc<Node>, upcall: Upcall) {
    match upcall {
        Upcall::Request { key, request, flow } => {
            let node = node.clone();
            let in_dialog = request.to().is_some_and(|to| to.tag().is_some());
            match request.method.as_str() {
                "REGISTER" => {
                    tokio::spawn(async move { registrar::register(&node, &key, &request, &flow).await });
                }
                "INVITE" if !in_dialog => {
                    tokio::spawn(proxy::invite(node, key, request, flow));
                }
                _ if in_dialog => {
                    tokio::spawn(proxy::in_dialog(node, key, request));
                }
                "OPTIONS" => {
                    let mut response = request.response(200, "OK", Some("opt"));
                    response
                        .headers
                        .push("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO");
                    node.ctx.respond(&key, response);
                }
                _ => node
                    .ctx
                    .respond(&key, request.response(501, "Not Implemented", Some("ni"))),
            }
        }
        Upcall::Ack { request } => proxy::ack(node, &request),
        Upcall::StrayResponse { response } => proxy::stray_response(node, response),
    }
}
