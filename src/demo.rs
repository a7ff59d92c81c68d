//! `offhook demo` and `offhook web`: seed the demo tenant (idempotently) and run
//! the services in this process until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context as _;
use offhook_directory::{
    AccountKind, AccountUpdate, Directory, DirectoryError, IconUpdate, LineKind, NewAccount, NewIcon,
    NewLine, NewTenant, Scope,
};
use offhook_media::relay::{Device, Relay, RelayConfig};
use offhook_signaling::server::Server;
use tokio::net::TcpListener;

use crate::cli::DemoArgs;
use crate::config::{Config, WebConfig};
use crate::publish;

/// The demo tenant's name.
pub(crate) const DEMO_TENANT: &str = "demo";
/// Its SIP domain.
pub(crate) const DEMO_DOMAIN: &str = "demo.offhook.test";
/// The demo icon's public id.
pub(crate) const DEMO_ICON: &str = "demo-echo";
/// The number of the echo on the emulated telephone network.
pub(crate) const ECHO_NUMBER: &str = "5550100";
/// How long the demo's "nobody answers" icon rings (the relay's default is 60 s).
const DEMO_RING_TIMEOUT_S: i64 = 20;

/// Seeds the demo tenant, icons and the relay's configured lines unless they exist, and lets the
/// icon be used from the pages served on `web_port` (none when 0).
/// A password nobody can guess (the demo relay's, made at each start).
#[allow(clippy::disallowed_methods)] // the process's own randomness, at start
fn random_password() -> String {
    use rand::Rng as _;
    hex::encode(rand::rng().random::<[u8; 24]>())
}

async fn seed(directory: &Directory, config: &Config, web_port: u16) -> anyhow::Result<()> {
    match directory
        .create_tenant(NewTenant {
            name: DEMO_TENANT.into(),
            sip_domain: DEMO_DOMAIN.into(),
        })
        .await
    {
        Ok(_) | Err(DirectoryError::Conflict(_)) => {}
        Err(err) => return Err(err.into()),
    }
    let origins: Vec<String> = match web_port {
        0 => Vec::new(),
        port => vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ],
    };
    let icon = NewIcon {
        public_id: Some(DEMO_ICON.into()),
        allowed_origins: origins.clone(),
        ..NewIcon::new(DEMO_TENANT, ECHO_NUMBER, "Call the echo")
    };
    // The echo first: the start page lists icons in the order they were made.
    match directory.create_icon(icon).await {
        Ok(_) => {}
        Err(DirectoryError::Conflict(_)) if !origins.is_empty() => {
            let update = IconUpdate {
                allowed_origins: Some(origins.clone()),
                ..Default::default()
            };
            directory.update_icon(&Scope::Operator, DEMO_ICON, update).await?;
        }
        Err(DirectoryError::Conflict(_)) => {}
        Err(err) => return Err(err.into()),
    }
    for (public_id, number, label, ring_timeout_s) in [
        ("demo-busy", "5550102", "A busy line", None),
        (
            "demo-no-answer",
            "5550103",
            "Nobody answers",
            Some(DEMO_RING_TIMEOUT_S),
        ),
        ("demo-invalid", "5550104", "A number that does not exist", None),
    ] {
        let other = NewIcon {
            public_id: Some(public_id.into()),
            allowed_origins: origins.clone(),
            ring_timeout_s,
            ..NewIcon::new(DEMO_TENANT, number, label)
        };
        match directory.create_icon(other).await {
            Ok(_) | Err(DirectoryError::Conflict(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    // The relay account's password is new at every start: nobody outside this
    // process knows it, so nobody else can register as the relay.
    let relay = NewAccount {
        tenant: DEMO_TENANT.into(),
        username: config.media.name.clone(),
        password: config.media.password.clone(),
        display_name: "demo relay".into(),
        number: None,
        kind: AccountKind::Relay,
    };
    match directory.create_account(relay).await {
        Ok(_) => {}
        Err(DirectoryError::Conflict(_)) => {
            let update = AccountUpdate {
                password: Some(config.media.password.clone()),
                ..AccountUpdate::default()
            };
            directory
                .update_account(DEMO_TENANT, &config.media.name, update)
                .await?;
        }
        Err(err) => return Err(err.into()),
    }
    for spec in &config.media.lines {
        let (device_path, kind) = match (&spec.device, &spec.soundcard) {
            (Device::Emulated, None) => ("emulated".to_owned(), LineKind::Emulated),
            (Device::Emulated, Some(_)) => ("emulated".to_owned(), LineKind::ModemSoundcard),
            (Device::Serial(path), None) => (path.display().to_string(), LineKind::Modem),
            (Device::Serial(path), Some(_)) => (path.display().to_string(), LineKind::ModemSoundcard),
        };
        let line = NewLine {
            name: spec.name.clone(),
            relay: config.media.name.clone(),
            tenant: None,
            device_path,
            kind,
        };
        match directory.create_line(line).await {
            Ok(_) | Err(DirectoryError::Conflict(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Resolves when the process is asked to stop.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

/// `offhook demo`.
pub(crate) async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let config = &Config {
        media: RelayConfig {
            password: random_password(),
            ..config.media.clone()
        },
        ..config.clone()
    };
    let directory = Directory::connect(&config.database_url).await?;
    let listener = match args.seed_only {
        true => None,
        false => Some(bind(config).await?),
    };
    let port = match &listener {
        Some(listener) => listener.local_addr()?.port(),
        None => config.web.listen.port(),
    };
    seed(&directory, config, port).await?;
    println!(
        "offhook demo: tenant '{DEMO_TENANT}' ({DEMO_DOMAIN}), icon '{DEMO_ICON}' dialing {ECHO_NUMBER} (echo), \
         line 'demo-line-1' (emulated), database {}",
        config.database_url
    );
    let Some(listener) = listener else {
        directory.close().await;
        return Ok(());
    };
    let signaling = start_signaling(config, &directory).await?;
    let _signaling_metrics = publish_signaling(config, &directory, &signaling);
    let relay = start_media(RelayConfig {
        signaling: signaling.bound.udp.unwrap_or(config.media.signaling),
        ..config.media.clone()
    })
    .await?;
    let _media_metrics = publish_media(&config.media.name, &directory, &relay);
    let _media_health = serve_relay_health(&config.media, &relay).await?;
    // Browsers call over the WebSocket this process actually listens on.
    let sip_ws_url = signaling
        .bound
        .ws
        .map_or_else(|| config.web.sip_ws_url.clone(), |a| format!("ws://{a}"));
    let web = WebConfig {
        sip_ws_url,
        start_page_tenant: config
            .web
            .start_page_tenant
            .clone()
            .or(Some(DEMO_TENANT.to_owned())),
        ..config.web.clone()
    };
    let served = serve_web(listener, directory.clone(), &web).await;
    // Shutdown order: the web stopped taking clicks; signaling drains (its calls
    // end with a BYE both ways, their CDRs are written); then the relay goes,
    // and the directory closes last, so that nothing is written to a closed pool.
    signaling.shutdown().await;
    drop(relay);
    directory.close().await;
    served
}

/// `offhook signaling`: the SIP server until stopped.
pub(crate) async fn run_signaling(config: &Config) -> anyhow::Result<()> {
    let directory = Directory::connect(&config.database_url).await?;
    let server = start_signaling(config, &directory).await?;
    let metrics = publish_signaling(config, &directory, &server);
    shutdown_signal().await;
    drop(metrics);
    // CDRs still queued are written before the directory closes.
    server.shutdown().await;
    directory.close().await;
    Ok(())
}

async fn start_signaling(config: &Config, directory: &Directory) -> anyhow::Result<Server> {
    let server = Server::start(config.signaling.clone(), directory.clone()).await?;
    let b = &server.bound;
    let show = |name: &str, addr: Option<std::net::SocketAddr>| {
        addr.map(|a| format!(" {name}={a}")).unwrap_or_default()
    };
    println!(
        "offhook: signaling serving SIP{}{}{}{}{}",
        show("udp", b.udp),
        show("tcp", b.tcp),
        show("ws", b.ws),
        show("tls", b.tls),
        show("wss", b.wss)
    );
    Ok(server)
}

/// Publishes the signaling node's counters under its node id.
fn publish_signaling(config: &Config, directory: &Directory, server: &Server) -> publish::Publisher {
    let stats = Arc::clone(&server.stats);
    publish::spawn(directory.clone(), config.signaling.node_id.clone(), move || {
        stats.metric_values()
    })
}

/// `offhook media`: the relay and its lines until stopped. It uses the directory
/// only to publish its media counters and what its modems say of its lines.
pub(crate) async fn run_media(config: &Config) -> anyhow::Result<()> {
    let directory = Directory::connect(&config.database_url).await?;
    let relay = start_media(config.media.clone()).await?;
    let metrics = publish_media(&config.media.name, &directory, &relay);
    let health = serve_relay_health(&config.media, &relay).await?;
    shutdown_signal().await;
    drop(health);
    drop(metrics);
    drop(relay);
    directory.close().await;
    Ok(())
}

/// Publishes the relay's media counters under its name, and mirrors its lines'
/// states (faulty or working) into the directory.
fn publish_media(name: &str, directory: &Directory, relay: &Relay) -> [publish::Publisher; 2] {
    let (stats, lines) = (Arc::clone(&relay.stats), Arc::clone(&relay.stats));
    [
        publish::spawn(directory.clone(), name.to_owned(), move || stats.metric_values()),
        publish::mirror_lines(directory.clone(), name.to_owned(), move || lines.line_states()),
    ]
}

/// Serves the relay's `/healthz` and `/readyz` on `media.health_listen`, if
/// set, until the returned task is aborted.
async fn serve_relay_health(config: &RelayConfig, relay: &Relay) -> anyhow::Result<Option<AbortOnDrop>> {
    let Some(listen) = config.health_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (media.health_listen)"))?;
    println!(
        "offhook: media health serving http://{}/ (/healthz, /readyz)",
        listener.local_addr()?
    );
    let stats = Arc::clone(&relay.stats);
    let lines: offhook_web::relay_health::LineStates = Arc::new(move || stats.line_states());
    let task = tokio::spawn(async move {
        if let Err(err) = offhook_web::relay_health::serve(listener, lines, std::future::pending()).await {
            tracing::warn!(%err, "media health endpoints stopped");
        }
    });
    Ok(Some(AbortOnDrop(task)))
}

/// A background task that ends when this is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn start_media(config: RelayConfig) -> anyhow::Result<Relay> {
    let lines: Vec<&str> = config.lines.iter().map(|l| l.name.as_str()).collect();
    let lines = lines.join(", ");
    let relay = Relay::start(config).await?;
    println!(
        "offhook: media relay at sip:{} with lines {lines} (registered)",
        relay.local
    );
    Ok(relay)
}

/// `offhook web`.
pub(crate) async fn run_web(config: &Config) -> anyhow::Result<()> {
    let directory = Directory::connect(&config.database_url).await?;
    let served = serve_web(bind(config).await?, directory.clone(), &config.web).await;
    directory.close().await;
    served
}

async fn bind(config: &Config) -> anyhow::Result<TcpListener> {
    TcpListener::bind(config.web.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.web.listen))
}

/// Serves the web routes and delivers the webhook outbox until stopped.
async fn serve_web(listener: TcpListener, directory: Directory, web: &WebConfig) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let state = offhook_web::AppState::new(directory.clone(), web.sip_ws_url.clone())
        .await?
        .with_start_page_tenant(web.start_page_tenant.clone())
        .with_webhooks(web.webhooks.clone())
        .with_ice(&web.ice)
        .with_trusted_proxies(web.trusted_proxies.clone())
        .with_link_profile(web.link_profile);
    let deliveries = offhook_web::webhook_delivery::spawn(directory, web.webhooks.clone(), node_name())
        .map_err(anyhow::Error::msg)?;
    println!("offhook: web serving http://{address}/ (call icons, /widget.js, click API, /healthz, /readyz)");
    offhook_web::serve(listener, state, shutdown_signal()).await?;
    drop(deliveries);
    Ok(())
}

/// A name unique per process incarnation: whose webhook delivery leases are whose.
#[allow(clippy::disallowed_methods)] // the process's own clock, at start
fn node_name() -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("web-{}-{started}", std::process::id())
}
