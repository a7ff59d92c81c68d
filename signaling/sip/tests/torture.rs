//! RFC 4475 torture messages against the parser, the printer and
//! `validate_request` (the RFC's byte-exact archive): each file gets the verdict `tests/data/rfc4475/verdicts.txt`
//! gives it, valid ones survive a print-and-parse round trip, and seeded mutations
//! of all of them never make the parser or the printer panic.

use std::path::{Path, PathBuf};

use offhook_sip::message::{Message, parse, validate_request};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475")
}

/// (file name, verdict) pairs from verdicts.txt.
fn verdicts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data_dir().join("verdicts.txt")).expect("verdicts.txt is committed");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (file, verdict) = line.split_once(' ').expect("a line is `<file> <verdict>`");
            (file.to_owned(), verdict.to_owned())
        })
        .collect()
}

fn read(file: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Call-ID, CSeq and the number of Via values: what a round trip must keep.
fn identity(message: &Message) -> (String, String, usize) {
    let headers = message.headers();
    (
        headers.get("Call-ID").unwrap_or_default().to_owned(),
        headers.get("CSeq").unwrap_or_default().to_owned(),
        headers.get_all("Via").len(),
    )
}

#[test]
fn every_message_gets_its_verdict() {
    let verdicts = verdicts();
    assert_eq!(verdicts.len(), 49, "one verdict per message of the RFC");
    for (file, verdict) in verdicts {
        let parsed = parse(&read(&file));
        let validated = match &parsed {
            Ok(Message::Request(request)) => validate_request(request).map_err(|r| r.status.to_string()),
            Ok(Message::Response(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        match verdict.split_once(' ') {
            None if verdict == "valid" => {
                let message = parsed.unwrap_or_else(|e| panic!("{file}: refused: {e}"));
                assert_eq!(validated, Ok(()), "{file}");
                let again =
                    parse(&message.to_bytes()).unwrap_or_else(|e| panic!("{file}: reprint refused: {e}"));
                assert_eq!(identity(&again), identity(&message), "{file}");
            }
            Some(("parse", reason)) => {
                assert_eq!(
                    parsed.err().map(|e| e.to_string()).as_deref(),
                    Some(reason),
                    "{file}"
                );
            }
            Some(("validate", status)) => {
                assert!(parsed.is_ok(), "{file}: {parsed:?}");
                assert_eq!(validated, Err(status.to_owned()), "{file}");
            }
            _ => panic!("{file}: unknown verdict {verdict:?}"),
        }
    }
}

#[test]
fn tortuous_invite_reads_right() {
    let Ok(Message::Request(r)) = parse(&read("wsinv.dat")) else {
        panic!("wsinv parses as a request")
    };
    let vias: Vec<_> = r
        .headers
        .get_all("Via")
        .into_iter()
        .map(|v| offhook_sip::message::Via::parse(v).expect("each Via parses"))
        .collect();
    let hosts: Vec<_> = vias
        .iter()
        .map(|v| (v.transport.as_str(), v.host.as_str()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("UDP", "192.0.2.2"),
            ("TCP", "spindle.example.com"),
            ("UDP", "192.168.255.111")
        ]
    );
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(
        r.cseq().map(|c| (c.number, c.method)),
        Some((9, offhook_sip::message::Method::Invite))
    );
    assert_eq!(r.headers.get("Max-Forwards"), Some("0068"));
    assert_eq!(
        r.to().and_then(|to| to.tag().map(str::to_owned)).as_deref(),
        Some("1918181833n")
    );
    assert_eq!(
        r.from().and_then(|f| f.tag().map(str::to_owned)).as_deref(),
        Some("98asjd8")
    );
    let contact = offhook_sip::message::NameAddr::parse(r.headers.get("Contact").unwrap_or_default())
        .expect("the Contact parses");
    assert_eq!(
        (contact.param("newparam"), contact.param("q")),
        (Some("newvalue"), Some("0.33"))
    );
    assert_eq!(r.body.len(), 150);
}

#[test]
fn mutated_torture_messages_never_panic() {
    let corpus: Vec<Vec<u8>> = verdicts().iter().map(|(file, _)| read(file)).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..20_000 {
        let mut bytes = corpus[case % corpus.len()].clone();
        let r = next();
        match r % 4 {
            // Flip a few bytes.
            0 => {
                for _ in 0..1 + r % 8 {
                    let at = (next() as usize) % bytes.len().max(1);
                    if let Some(b) = bytes.get_mut(at) {
                        *b = next() as u8;
                    }
                }
            }
            // Cut anywhere.
            1 => bytes.truncate((next() as usize) % (bytes.len() + 1)),
            // Splice a slice of another message in.
            2 => {
                let other = &corpus[(next() as usize) % corpus.len()];
                let from = (next() as usize) % (other.len() + 1);
                let at = (next() as usize) % (bytes.len() + 1);
                bytes.splice(at..at, other[from..].iter().copied().take(64));
            }
            // Pure noise.
            _ => bytes = (0..r % 512).map(|_| next() as u8).collect(),
        }
        if let Ok(message) = parse(&bytes) {
            let _ = parse(&message.to_bytes());
            if let Message::Request(request) = &message {
                let _ = validate_request(request);
            }
        }
    }
}
