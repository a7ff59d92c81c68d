//! SIP over TLS and secure WebSocket with real certificates (a test CA and a
//! `localhost` certificate made by `openssl`): the server completes the handshake,
//! frames the stream, and answers an OPTIONS on each.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use offhook_directory::testing::{Backend, TestDb};
use offhook_signaling::config::SignalingConfig;
use offhook_signaling::server::Server;
use offhook_sip::message::{Message, parse};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

const OPTIONS: &str = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS client.invalid;branch=z9hG4bKtls1\r\n\
    Max-Forwards: 70\r\nFrom: <sip:probe@client.invalid>;tag=p1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: tls-1\r\n\
    CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

async fn tls_client(addr: std::net::SocketAddr, ca: &std::path::Path) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(der.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the server's certificate")
}

fn status_of(bytes: &[u8]) -> u16 {
    match parse(bytes).expect("a SIP response") {
        Message::Response(r) => r.status,
        Message::Request(r) => panic!("unexpected {}", r.method),
    }
}

#[tokio::test]
async fn options_over_tls_and_secure_websocket() {
    let dir = std::env::temp_dir().join(format!("offhook-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    let script = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=offhook-test-ca -keyout ca.key -out ca.pem \
        && openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out leaf.csr \
        && printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > leaf.ext \
        && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile leaf.ext -out cert.pem";
    let made = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    let db = TestDb::new(Backend::Sqlite).await;
    let any = Some("127.0.0.1:0".parse().unwrap());
    let config = SignalingConfig {
        udp: None,
        tcp: None,
        ws: None,
        tls: any,
        wss: any,
        tls_cert: Some(cert),
        tls_key: Some(key),
        ..SignalingConfig::default()
    };
    let server = Server::start(config, db.directory.clone()).await.unwrap();

    let mut tls = tls_client(server.bound.tls.unwrap(), &ca).await;
    tls.write_all(OPTIONS.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status_of(&buf[..n]), 200, "OPTIONS over TLS");

    let stream = tls_client(server.bound.wss.unwrap(), &ca).await;
    let mut request = "wss://localhost/".into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream).await.unwrap();
    ws.send(WsMessage::text(OPTIONS.replace("SIP/2.0/TLS", "SIP/2.0/WSS")))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status_of(&reply.into_data()), 200, "OPTIONS over WSS");

    drop(server);
    db.finish().await;
    let _ = std::fs::remove_dir_all(dir);
}
