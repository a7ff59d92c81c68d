//! Whether an answered call's media is alive, decided from what its leg says
//! ([`Health`]) and the time since the answer: an RTP/AVP leg silent for the
//! RTP timeout (nothing valid heard, RFC 3550 style) is a `media-timeout`; a
//! WebRTC leg whose ICE has not connected within the ICE timeout is
//! `no-audio-path`, and one that lost consent or disconnected after connecting
//! is a `media-timeout`. While the caller holds the call with nothing to send
//! (`inactive`, `recvonly`) the RTP watch is paused, and runs again from the
//! resume. Sans-IO: `now` in, a verdict and the next deadline out.

use std::time::{Duration, Instant};

use offhook_vocab::HangupCause;

/// What a leg says of its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// RTP/AVP: when a valid packet (RTP or RTCP) last arrived.
    Rtp {
        /// The last one, if any.
        heard: Option<Instant>,
    },
    /// WebRTC: whether ICE (and DTLS) connected, and whether the peer was lost
    /// since (consent freshness failed, ICE disconnected, DTLS closed).
    Ice {
        /// Connected once.
        connected: bool,
        /// Gone.
        lost: bool,
    },
}

/// The bounds, from the relay's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Silence that ends an RTP/AVP call.
    pub(crate) rtp: Duration,
    /// How long ICE may take to connect after the answer.
    pub(crate) ice_connect: Duration,
}

/// One answered call's watch over its media.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watchdog {
    /// The answer, or the last resume after a hold.
    answered: Instant,
    timeouts: Timeouts,
    /// The caller may send nothing now (RTP/AVP hold).
    paused: bool,
}

impl Watchdog {
    /// Watches from the answer at `answered`.
    pub(crate) fn new(answered: Instant, timeouts: Timeouts) -> Self {
        Self {
            answered,
            timeouts,
            paused: false,
        }
    }

    /// The caller legitimately sends nothing from now on (RTP/AVP only).
    pub(crate) fn pause(&mut self) {
        self.paused = true;
    }

    /// The caller sends again from `now`: the RTP timeout counts from here.
    pub(crate) fn resume(&mut self, now: Instant) {
        if std::mem::take(&mut self.paused) {
            self.answered = now;
        }
    }

    /// When the verdict may change with no news from the leg.
    pub(crate) fn deadline(&self, health: Health) -> Option<Instant> {
        match health {
            Health::Rtp { .. } if self.paused => None,
            Health::Rtp { heard } => {
                let since = heard.map_or(self.answered, |at| at.max(self.answered));
                Some(since + self.timeouts.rtp)
            }
            Health::Ice {
                connected: false,
                lost: false,
            } => Some(self.answered + self.timeouts.ice_connect),
            Health::Ice { .. } => None,
        }
    }

    /// Why the call must end at `now`, if it must.
    pub(crate) fn verdict(&self, now: Instant, health: Health) -> Option<HangupCause> {
        match health {
            Health::Ice {
                connected,
                lost: true,
            } => Some(match connected {
                true => HangupCause::MediaTimeout,
                false => HangupCause::NoAudioPath,
            }),
            Health::Ice { connected: true, .. } => None,
            Health::Ice { .. } => self.due(now, health).then_some(HangupCause::NoAudioPath),
            Health::Rtp { .. } => self.due(now, health).then_some(HangupCause::MediaTimeout),
        }
    }

    fn due(&self, now: Instant, health: Health) -> bool {
        self.deadline(health).is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "a test's clock starts at the real now")]
mod tests {
    use super::*;

    const BOUNDS: Timeouts = Timeouts {
        rtp: Duration::from_secs(20),
        ice_connect: Duration::from_secs(10),
    };

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn silent_rtp_times_out_from_the_answer_or_the_last_packet() {
        let t0 = Instant::now();
        let dog = Watchdog::new(t0, BOUNDS);
        let silent = Health::Rtp { heard: None };
        assert_eq!(dog.deadline(silent), Some(t0 + s(20)));
        assert_eq!(dog.verdict(t0 + s(19), silent), None);
        assert_eq!(dog.verdict(t0 + s(20), silent), Some(HangupCause::MediaTimeout));
        // Early media before the answer does not shorten the bound.
        let early = Health::Rtp {
            heard: Some(t0 - s(5)),
        };
        assert_eq!(dog.deadline(early), Some(t0 + s(20)));
        let heard = Health::Rtp {
            heard: Some(t0 + s(15)),
        };
        assert_eq!(dog.verdict(t0 + s(30), heard), None);
        assert_eq!(dog.verdict(t0 + s(35), heard), Some(HangupCause::MediaTimeout));
    }

    #[test]
    fn a_hold_pauses_the_rtp_watch_until_the_resume() {
        let t0 = Instant::now();
        let mut dog = Watchdog::new(t0, BOUNDS);
        let heard = Health::Rtp {
            heard: Some(t0 + s(5)),
        };
        dog.pause();
        assert_eq!(dog.deadline(heard), None);
        assert_eq!(dog.verdict(t0 + s(600), heard), None);
        dog.resume(t0 + s(600));
        assert_eq!(dog.deadline(heard), Some(t0 + s(620)));
        assert_eq!(dog.verdict(t0 + s(620), heard), Some(HangupCause::MediaTimeout));
        // A resume without a hold moves nothing.
        dog.resume(t0 + s(610));
        assert_eq!(dog.deadline(heard), Some(t0 + s(620)));
    }

    #[test]
    fn ice_must_connect_in_time_and_stay() {
        let t0 = Instant::now();
        let dog = Watchdog::new(t0, BOUNDS);
        let waiting = Health::Ice {
            connected: false,
            lost: false,
        };
        assert_eq!(dog.deadline(waiting), Some(t0 + s(10)));
        assert_eq!(dog.verdict(t0 + s(9), waiting), None);
        assert_eq!(dog.verdict(t0 + s(10), waiting), Some(HangupCause::NoAudioPath));
        let up = Health::Ice {
            connected: true,
            lost: false,
        };
        assert_eq!(dog.deadline(up), None);
        assert_eq!(dog.verdict(t0 + s(3600), up), None);
        let lost = Health::Ice {
            connected: true,
            lost: true,
        };
        assert_eq!(dog.verdict(t0 + s(1), lost), Some(HangupCause::MediaTimeout));
        let failed = Health::Ice {
            connected: false,
            lost: true,
        };
        assert_eq!(dog.verdict(t0 + s(1), failed), Some(HangupCause::NoAudioPath));
    }
}
