//! `/metrics` in the Prometheus text format, read from the directory on each
//! scrape (so every node reports the same shared state): calls by outcome and
//! lines by state. Hand-rolled: two gauges do not need a metrics crate.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (outcomes, lines) = match (
        state.directory.cdr_outcomes().await,
        state.directory.line_states().await,
    ) {
        (Ok(outcomes), Ok(lines)) => (outcomes, lines),
        (Err(err), _) | (_, Err(err)) => {
            tracing::warn!(%err, "metrics: directory unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "directory unavailable\n").into_response();
        }
    };
    let mut out = String::new();
    out.push_str("# HELP offhook_calls Calls recorded in the CDRs, by outcome (active: not ended yet).\n");
    out.push_str("# TYPE offhook_calls gauge\n");
    for (outcome, calls) in outcomes {
        let _ = writeln!(out, "offhook_calls{{outcome=\"{}\"}} {calls}", label(&outcome));
    }
    out.push_str("# HELP offhook_lines Telephone lines, by state.\n");
    out.push_str("# TYPE offhook_lines gauge\n");
    for (line_state, count) in lines {
        let _ = writeln!(out, "offhook_lines{{state=\"{}\"}} {count}", label(&line_state));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
