//! `/metrics` in the Prometheus text format, read from the directory on each
//! scrape, so every web node reports the same shared state: calls by outcome,
//! active calls, lines by state, registered lines, and what each signaling node
//! and media relay published there (SIP messages by method and response class,
//! RTP packets, late and lost packets, jitter buffer depth), labelled by node.
//! Hand-rolled: a few gauges and counters do not need a metrics crate.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use offhook_directory::{DirectoryError, NodeMetric};

use crate::AppState;

/// Values a node published longer ago than this are from a node that is gone.
const NODE_METRICS_FRESH_MS: i64 = 30_000;

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The directory's figures for one scrape.
struct Scrape {
    outcomes: Vec<(String, i64)>,
    lines: Vec<(String, i64)>,
    registered_lines: i64,
    nodes: Vec<NodeMetric>,
}

async fn scrape(state: &AppState) -> Result<Scrape, DirectoryError> {
    let d = &state.directory;
    let now = chrono::Utc::now().timestamp_millis();
    Ok(Scrape {
        outcomes: d.cdr_outcomes().await?,
        lines: d.line_states().await?,
        registered_lines: d.registered_lines(now).await?,
        nodes: d.node_metrics(now - NODE_METRICS_FRESH_MS).await?,
    })
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render(scrape: &Scrape) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "offhook_calls",
        "gauge",
        "Calls recorded in the CDRs, by outcome (active: not ended yet).",
    );
    for (outcome, calls) in &scrape.outcomes {
        let _ = writeln!(out, "offhook_calls{{outcome=\"{}\"}} {calls}", label(outcome));
    }
    let active = scrape
        .outcomes
        .iter()
        .find(|(o, _)| o == "active")
        .map_or(0, |(_, n)| *n);
    family(&mut out, "offhook_active_calls", "gauge", "Calls in progress.");
    let _ = writeln!(out, "offhook_active_calls {active}");
    family(&mut out, "offhook_lines", "gauge", "Telephone lines, by state.");
    for (line_state, count) in &scrape.lines {
        let _ = writeln!(out, "offhook_lines{{state=\"{}\"}} {count}", label(line_state));
    }
    family(
        &mut out,
        "offhook_registered_lines",
        "gauge",
        "Lines whose relay has a live registration for them.",
    );
    let _ = writeln!(out, "offhook_registered_lines {}", scrape.registered_lines);
    let mut current = "";
    for metric in &scrape.nodes {
        if metric.name != current {
            current = &metric.name;
            let kind = if current.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            family(
                &mut out,
                current,
                kind,
                "Published by each signaling node and media relay.",
            );
        }
        let node = format!("node=\"{}\"", label(&metric.node));
        let labels = if metric.labels.is_empty() {
            node
        } else {
            format!("{node},{}", metric.labels)
        };
        let _ = writeln!(out, "{}{{{labels}}} {}", metric.name, metric.value);
    }
    out
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    match scrape(&state).await {
        Ok(scrape) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render(&scrape),
        )
            .into_response(),
        Err(err) => {
            tracing::warn!(%err, "metrics: directory unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "directory unavailable\n").into_response()
        }
    }
}
