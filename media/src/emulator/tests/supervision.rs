//! Answer supervision against each country's E.180 cadences, in simulated time:
//! calls that ring out are never taken for answered, a greeting is detected as
//! the answer with nothing of it lost (early media, then the call's audio),
//! busy is busy; and the former
//! country-blind 3 s presumption is shown to bill ringing calls.

use super::*;
use crate::dsp::cadence::Country;
use crate::dsp::speech::Greeting;

const CALLS_PER_CADENCE: u32 = 20;

fn bench(country: Country, greeting_rings: u32) -> Bench {
    let config = DriverConfig {
        no_answer: Duration::from_secs(40),
        ..DriverConfig::for_country(country)
    };
    let exchange = Exchange {
        country: Some(country),
        greeting_rings,
        ..Exchange::default()
    };
    Bench::on_exchange(Faults::default(), config, exchange)
}

fn answered(b: &Bench) -> Option<AnswerSource> {
    b.events.iter().find_map(|e| match e {
        LineEvent::Answered(how) => Some(*how),
        _ => None,
    })
}

/// Runs in 10 ms steps until answered or `for_` is over; when it was answered.
fn run_until_answered(b: &mut Bench, for_: Duration) -> Option<Instant> {
    let end = b.now + for_;
    while b.now < end {
        b.run(Duration::from_millis(10));
        if answered(b).is_some() {
            return Some(b.now);
        }
    }
    None
}

#[test]
fn calls_that_ring_out_are_never_taken_for_answered_on_any_cadence() {
    for country in Country::ALL {
        let mut false_answers = 0;
        for call in 0..CALLS_PER_CADENCE {
            let mut b = bench(country, 2);
            // Each call starts at another phase of the modem's 20 ms ticks.
            b.run(Duration::from_millis(10 + 7 * u64::from(call)));
            b.dial(NEVER_ANSWERS, Duration::from_secs(45));
            if answered(&b).is_some() {
                false_answers += 1;
            }
            assert_eq!(
                b.outcome(),
                [LineEvent::Ringing, LineEvent::NoAnswer, LineEvent::Idle],
                "{country:?} call {call}"
            );
        }
        assert_eq!(false_answers, 0, "{country:?}");
    }
}

#[test]
fn the_former_3_s_presumption_bills_ringing_calls_where_the_silence_is_longer() {
    for country in Country::ALL {
        let config = DriverConfig {
            no_answer: Duration::from_secs(40),
            ..DriverConfig::default()
        };
        let exchange = Exchange {
            country: Some(country),
            greeting_rings: 2,
            ..Exchange::default()
        };
        let mut b = Bench::on_exchange(Faults::default(), config, exchange);
        b.dial(NEVER_ANSWERS, Duration::from_secs(45));
        let longer = country.ringback().longest_silence() > Duration::from_secs(3);
        assert_eq!(
            answered(&b) == Some(AnswerSource::RingbackStopped),
            longer,
            "{country:?}: {:?}",
            b.outcome()
        );
    }
}

/// How much of the greeting's start the relay did not get, in samples: the
/// smallest offset into the greeting from which 200 ms of it arrived intact.
fn greeting_lost(heard: &[u8]) -> Option<usize> {
    let reference = Greeting::new(GREETING_SYLLABLES).next(8000);
    (0..=4000).step_by(8).find(|&skip| {
        let piece = &reference[skip..skip + 1600];
        heard.windows(piece.len()).any(|w| w == piece)
    })
}

#[test]
fn a_greeting_is_the_answer_and_at_most_100_ms_of_it_is_lost() {
    for country in Country::ALL {
        for rings in 1..=3 {
            let mut b = bench(country, rings);
            b.run(Duration::from_millis(10 * u64::from(rings)));
            let dialed = b.now;
            b.driver.handle_command(b.now, LineCommand::Dial(GREETS.into()));
            let at = run_until_answered(&mut b, Duration::from_secs(30))
                .unwrap_or_else(|| panic!("{country:?} {rings} rings: not answered"));
            assert_eq!(answered(&b), Some(AnswerSource::VoiceDetected), "{country:?}");
            let spoke = dialed + b.modem.exchange.answer_after(rings);
            let detection = at.saturating_duration_since(spoke);
            b.run(Duration::from_secs(2));
            let lost =
                greeting_lost(&b.line_stream).unwrap_or_else(|| panic!("{country:?}: greeting not heard"));
            let lost_ms = lost / 8;
            eprintln!(
                "{country:?} after {rings} rings: answer detected {detection:?} after the callee spoke, {lost_ms} ms of the greeting lost"
            );
            assert!(at >= spoke, "{country:?}: answered before the callee spoke");
            assert!(
                detection <= Duration::from_millis(100),
                "{country:?}: detected after {detection:?}"
            );
            assert!(lost_ms <= 100, "{country:?}: {lost_ms} ms lost");
        }
    }
}

#[test]
fn busy_is_busy_in_every_country() {
    for country in Country::ALL {
        let mut b = bench(country, 2);
        b.dial(BUSY, Duration::from_secs(8));
        assert_eq!(b.outcome(), [LineEvent::Busy, LineEvent::Idle], "{country:?}");
    }
}

#[test]
fn the_lines_country_goes_to_the_modem_by_gci_and_its_exchange_follows() {
    let config = DriverConfig {
        no_answer: Duration::from_secs(40),
        ..DriverConfig::for_country(Country::Uk)
    };
    // The modem's exchange starts country-blind: only +GCI makes it British.
    let mut b = Bench::on_exchange(Faults::default(), config, Exchange::default());
    assert_eq!(b.events, [LineEvent::Ready]);
    let init = String::from_utf8_lossy(&b.to_modem).into_owned();
    assert!(init.contains("AT+GCI=B4\r"), "{init}");
    assert!(
        init.find("AT+GCI").unwrap() < init.find("AT+FCLASS=8").unwrap(),
        "country first: {init}"
    );
    assert_eq!(b.modem.exchange.country, Some(Country::Uk));
    b.dial(NEVER_ANSWERS, Duration::from_secs(45));
    assert_eq!(
        b.outcome(),
        [LineEvent::Ringing, LineEvent::NoAnswer, LineEvent::Idle]
    );
    let early: Vec<i16> = b
        .line_stream
        .iter()
        .map(|&c| crate::dsp::g711::ulaw_to_linear(c))
        .collect();
    assert!(
        crate::dsp::goertzel::some_block_has(&early, 800, &[400.0, 450.0], 0.2),
        "the British ringback was heard"
    );
}

#[test]
fn a_line_without_a_country_sends_no_gci_and_the_emulator_answers_gci_queries() {
    let b = Bench::new(Faults::default());
    assert!(!String::from_utf8_lossy(&b.to_modem).contains("GCI"));
    let mut modem = Emulator::new(Faults::default(), Duration::from_secs(3));
    let now = b.now;
    modem.handle_bytes(now, b"AT+GCI=04\r");
    modem.handle_bytes(now, b"AT+GCI?\r");
    modem.handle_bytes(now, b"AT+GCI=99\r");
    let mut out = Vec::new();
    while let Some(bytes) = modem.poll_transmit() {
        out.extend(bytes);
    }
    assert_eq!(
        String::from_utf8_lossy(&out),
        "\r\nOK\r\n\r\n+GCI: 04\r\n\r\nOK\r\n\r\nERROR\r\n"
    );
}
