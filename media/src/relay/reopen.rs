//! When the relay tries a faulty line's modem again: the first retry 1 s after
//! the fault, each failed retry doubling the wait up to 60 s, until the line is
//! ready (its modem opened and initialised). Sans-IO: faults and `now` in, the
//! lines due and the next deadline out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The first wait.
const FIRST: Duration = Duration::from_secs(1);
/// The longest wait.
const LONGEST: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Retry {
    /// The wait before the last retry (or this first one).
    wait: Duration,
    /// When the next retry is due; `None` while one is under way.
    due: Option<Instant>,
}

/// The faulty lines' retries, by line name.
#[derive(Debug, Default)]
pub(crate) struct Reopening {
    lines: BTreeMap<String, Retry>,
}

impl Reopening {
    /// `line` is faulty at `now` (again, when a retry was under way): its next
    /// retry is scheduled, unless one already is.
    pub(crate) fn failed(&mut self, line: &str, now: Instant) {
        match self.lines.get_mut(line) {
            Some(Retry { due: Some(_), .. }) => {}
            Some(retry) => {
                retry.wait = (retry.wait * 2).min(LONGEST);
                retry.due = Some(now + retry.wait);
            }
            None => {
                let retry = Retry {
                    wait: FIRST,
                    due: Some(now + FIRST),
                };
                self.lines.insert(line.to_owned(), retry);
            }
        }
    }

    /// `line` works again: the next fault starts from the first wait.
    pub(crate) fn healed(&mut self, line: &str) {
        self.lines.remove(line);
    }

    /// The next retry due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.lines.values().filter_map(|r| r.due).min()
    }

    /// The lines to retry at `now` (each is under way until it fails or heals).
    pub(crate) fn due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for (line, retry) in &mut self.lines {
            if retry.due.is_some_and(|at| at <= now) {
                retry.due = None;
                due.push(line.clone());
            }
        }
        due
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_1_s_doubling_to_60_s_and_restart_once_healed() {
        let t0 = Instant::now();
        let mut reopening = Reopening::default();
        reopening.failed("a", t0);
        reopening.failed("a", t0); // the same fault, told twice
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            let at = reopening.poll_timeout().unwrap();
            waits.push((at - now).as_secs());
            assert!(reopening.due(at - Duration::from_millis(1)).is_empty());
            assert_eq!(reopening.due(at), ["a"]);
            assert_eq!(reopening.poll_timeout(), None, "under way");
            now = at;
            reopening.failed("a", now);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        reopening.healed("a");
        assert_eq!(reopening.poll_timeout(), None);
        reopening.failed("a", now);
        assert_eq!(reopening.poll_timeout(), Some(now + FIRST));
    }
}
