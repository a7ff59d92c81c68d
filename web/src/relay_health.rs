//! The media relay's own health endpoints (`offhook media` with
//! `media.health_listen`): `/healthz` while the process answers, `/readyz`
//! while at least one of its lines works (idle or carrying a call). A relay
//! whose every line is faulty or offline is not ready: 503, with each line's
//! state and fault reason in the body, so a load balancer or an operator sees
//! why.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use offhook_vocab::LineState;
use tokio::net::TcpListener;

/// Each line's name, state and fault reason, as the relay sees them now.
pub type LineStates = Arc<dyn Fn() -> Vec<(String, LineState, Option<String>)> + Send + Sync>;

/// Whether a relay with these lines is ready, and the body that says so.
pub fn readiness(lines: &[(String, LineState, Option<String>)]) -> (StatusCode, String) {
    let working =
        |state: &LineState| matches!(state, LineState::Idle | LineState::Dialing | LineState::InCall);
    if lines.iter().any(|(_, state, _)| working(state)) {
        return (StatusCode::OK, "ready\n".to_owned());
    }
    let mut body = String::from("not ready: no line works\n");
    for (name, state, reason) in lines {
        match reason {
            Some(reason) => body.push_str(&format!("{name}: {} ({reason})\n", state.as_str())),
            None => body.push_str(&format!("{name}: {}\n", state.as_str())),
        }
    }
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

/// The router of the relay's health endpoints.
pub fn router(lines: LineStates) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(lines): State<LineStates>| async move { readiness(&lines()) }),
        )
        .with_state(lines)
}

/// Serves the relay's health endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    lines: LineStates,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(lines).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, state: LineState, reason: Option<&str>) -> (String, LineState, Option<String>) {
        (name.to_owned(), state, reason.map(str::to_owned))
    }

    #[test]
    fn one_working_line_makes_the_relay_ready() {
        for state in [LineState::Idle, LineState::Dialing, LineState::InCall] {
            let lines = [
                line("bad", LineState::Fault, Some("no such device")),
                line("good", state, None),
            ];
            assert_eq!(readiness(&lines), (StatusCode::OK, "ready\n".to_owned()));
        }
    }

    #[test]
    fn no_working_line_is_not_ready_and_says_why() {
        let lines = [
            line("bad", LineState::Fault, Some("no such device")),
            line("gone", LineState::Offline, None),
        ];
        let (status, body) = readiness(&lines);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "not ready: no line works\nbad: fault (no such device)\ngone: offline\n"
        );
        assert_eq!(
            readiness(&[]).0,
            StatusCode::SERVICE_UNAVAILABLE,
            "no line at all"
        );
    }
}
