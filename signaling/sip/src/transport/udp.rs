//! UDP: one socket, one receive loop; each datagram is one message. Outgoing
//! datagrams leave from the same socket so that NATed peers see one address.

use std::sync::Arc;

use tokio::net::UdpSocket;

use super::{Flow, TransportKind, Transports};

/// Largest UDP payload there is.
const MAX_DATAGRAM: usize = 65_535;

/// Socket buffer asked for (the kernel caps it at `net.core.rmem_max`): a burst
/// of datagrams while the loop is busy waits here instead of being dropped.
const SOCKET_BUFFER: usize = 4 << 20;

/// Receives on `socket` until the core goes away.
pub async fn serve_udp(socket: UdpSocket, transports: Transports) -> std::io::Result<()> {
    let sock = socket2::SockRef::from(&socket);
    for set in [
        socket2::Socket::set_recv_buffer_size,
        socket2::Socket::set_send_buffer_size,
    ] {
        if let Err(err) = set(&sock, SOCKET_BUFFER) {
            tracing::debug!(%err, "UDP socket buffer left as it is");
        }
    }
    let socket = Arc::new(socket);
    let local = socket.local_addr()?;
    transports.set_udp(socket.clone());
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, remote) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            // ICMP port unreachable from an earlier send shows up here on Linux.
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(err) => return Err(err),
        };
        let flow = Flow {
            kind: TransportKind::Udp,
            local,
            remote,
            conn: None,
        };
        if !transports.deliver(flow, buf[..len].to_vec()).await {
            return Ok(());
        }
    }
}
