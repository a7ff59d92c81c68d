//! Lock-free counters of SIP messages an endpoint receives: requests by method and
//! responses by class (1xx-6xx), and what did not parse; read by the metrics publisher. Methods outside
//! RFC 3261 and its common extensions share one `other` counter, so a peer cannot
//! grow the set of labels.

use std::sync::atomic::{AtomicU64, Ordering};

/// Methods counted by name; anything else is `other`.
pub(crate) const METHODS: [&str; 13] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "INFO",
    "UPDATE",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
];

/// Received requests by method and responses by class.
#[derive(Debug, Default)]
pub struct MessageCounts {
    requests: [AtomicU64; METHODS.len() + 1],
    responses: [AtomicU64; 6],
}

impl MessageCounts {
    /// Counts a request of `method`.
    pub fn request(&self, method: &str) {
        let index = METHODS.iter().position(|m| *m == method).unwrap_or(METHODS.len());
        self.requests[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a response with `status` (100-699; others are not counted).
    pub fn response(&self, status: u16) {
        if let Some(counter) = usize::from(status / 100)
            .checked_sub(1)
            .and_then(|i| self.responses.get(i))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Requests so far, by method (`other` last).
    pub fn requests(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        METHODS
            .iter()
            .copied()
            .chain(["other"])
            .zip(&self.requests)
            .map(|(method, count)| (method, count.load(Ordering::Relaxed)))
    }

    /// Responses so far, by class (`1xx` … `6xx`).
    pub fn responses(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"]
            .into_iter()
            .zip(&self.responses)
            .map(|(class, count)| (class, count.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_class() {
        let counts = MessageCounts::default();
        for method in ["INVITE", "INVITE", "BYE", "FROB", "invite"] {
            counts.request(method);
        }
        for status in [100, 180, 200, 486, 699, 99, 700, 0] {
            counts.response(status);
        }
        let requests: Vec<_> = counts.requests().filter(|(_, n)| *n > 0).collect();
        assert_eq!(requests, [("INVITE", 2), ("BYE", 1), ("other", 2)]);
        let responses: Vec<_> = counts.responses().collect();
        assert_eq!(
            responses,
            [
                ("1xx", 2),
                ("2xx", 1),
                ("3xx", 0),
                ("4xx", 1),
                ("5xx", 0),
                ("6xx", 1)
            ]
        );
    }
}

/// Counters of one endpoint: what arrived and what did not parse.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages that did not parse.
    pub unparsable: AtomicU64,
    /// Of those, answered with 400.
    pub answered_400: AtomicU64,
    /// Requests received, all methods.
    pub requests: AtomicU64,
    /// Responses received.
    pub responses: AtomicU64,
    /// Requests received by method, responses by class.
    pub messages: MessageCounts,
}

impl Stats {
    /// The counters as (metric name, Prometheus labels, value), for the
    /// directory's node metrics.
    pub fn metric_values(&self) -> Vec<(String, String, i64)> {
        let value = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut values: Vec<(String, String, i64)> = self
            .messages
            .requests()
            .map(|(method, n)| {
                (
                    "offhook_sip_requests_received_total".to_owned(),
                    format!("method=\"{method}\""),
                    value(n),
                )
            })
            .collect();
        values.extend(self.messages.responses().map(|(class, n)| {
            (
                "offhook_sip_responses_received_total".to_owned(),
                format!("class=\"{class}\""),
                value(n),
            )
        }));
        values.push((
            "offhook_sip_unparsable_total".to_owned(),
            String::new(),
            value(self.unparsable.load(Ordering::Relaxed)),
        ));
        values
    }
}
