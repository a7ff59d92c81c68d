//! The header list: names canonicalised on the way in (case and compact forms, RFC
//! 3261 s7.3.3), order kept, values as text. Headers that may hold several
//! comma-separated values (Via, Contact, Route, ...) are split by [`Headers::get_all`]
//! with quotes and angle brackets respected.

/// Headers in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

/// Compact forms and the canonical spelling of well-known names.
const CANONICAL: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("o", "Event"),
    ("u", "Allow-Events"),
    ("r", "Refer-To"),
    ("x", "Session-Expires"),
    ("call-id", "Call-ID"),
    ("cseq", "CSeq"),
    ("www-authenticate", "WWW-Authenticate"),
    ("max-forwards", "Max-Forwards"),
    ("record-route", "Record-Route"),
    ("content-length", "Content-Length"),
    ("content-type", "Content-Type"),
    ("proxy-authorization", "Proxy-Authorization"),
    ("proxy-authenticate", "Proxy-Authenticate"),
    ("user-agent", "User-Agent"),
];

/// Headers whose comma-separated values are separate header values (RFC 3261 s7.3.1).
const MULTI_VALUED: &[&str] = &[
    "Via",
    "Contact",
    "Route",
    "Record-Route",
    "Allow",
    "Supported",
    "Require",
    "Proxy-Require",
    "Unsupported",
    "Accept",
    "Path",
];

/// The canonical spelling of a header name: compact forms expanded, well-known
/// names spelled as in the RFC, others with each dash-separated word capitalised.
pub(crate) fn canonical_name(name: &str) -> String {
    canonical(name).into_owned()
}

/// [`canonical_name`] without a copy when the name is spelled canonically
/// already (as every name the server itself asks for is).
fn canonical(name: &str) -> std::borrow::Cow<'_, str> {
    // Exact spellings first: a length check rules out most entries, where the
    // case-blind search below compares every one.
    if CANONICAL.iter().any(|(_, canonical)| *canonical == name) {
        return std::borrow::Cow::Borrowed(name);
    }
    if let Some((_, canonical)) = CANONICAL.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        return std::borrow::Cow::Borrowed(canonical);
    }
    let capitalised = name.split('-').all(|word| {
        let mut chars = word.chars();
        chars.next().is_none_or(|first| !first.is_ascii_lowercase()) && chars.all(|c| !c.is_ascii_uppercase())
    });
    if capitalised {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(respelled(name))
    }
}

/// Each dash-separated word of `name` capitalised, the rest lower case.
fn respelled(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    lower
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The text before the first comma outside quotes and angle brackets, and what
/// follows that comma (`None` when there is none). The delimiters are ASCII, so
/// a byte scan finds them and every cut falls on a character boundary.
fn split_first(value: &str) -> (&str, Option<&str>) {
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for (i, b) in value.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' if !quoted && !angle => return (&value[..i], Some(&value[i + 1..])),
            _ => {}
        }
    }
    (value, None)
}

/// The comma-separated values of a header line, trimmed, empty ones skipped.
fn values(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        loop {
            let (first, after) = split_first(rest?);
            rest = after;
            let first = first.trim();
            if !first.is_empty() {
                return Some(first);
            }
        }
    })
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub(crate) fn split_values(value: &str) -> Vec<&str> {
    values(value).collect()
}

impl Headers {
    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No headers at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (name, value) pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The first value of a header (the whole line for single-valued headers; the
    /// first element for multi-valued ones).
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = canonical(name);
        let line = self
            .0
            .iter()
            .find(|(n, _)| *n == *name)
            .map(|(_, v)| v.as_str())?;
        if MULTI_VALUED.contains(&&*name) {
            values(line).next()
        } else {
            Some(line)
        }
    }

    /// Every value of a header, across lines and comma-separated elements.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        let name = canonical(name);
        let multi = MULTI_VALUED.contains(&&*name);
        let mut all = Vec::new();
        for (_, value) in self.0.iter().filter(|(n, _)| *n == *name) {
            if multi {
                all.extend(values(value));
            } else {
                all.push(value.as_str());
            }
        }
        all
    }

    /// Whether a header is present.
    pub fn contains(&self, name: &str) -> bool {
        let name = canonical(name);
        self.0.iter().any(|(n, _)| *n == *name)
    }

    /// Appends a header line.
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((canonical_name(name), value.to_owned()));
    }

    /// Inserts a header line before every other line of that name (or first).
    pub fn push_front(&mut self, name: &str, value: &str) {
        let name = canonical_name(name);
        let at = self.0.iter().position(|(n, _)| *n == name).unwrap_or(0);
        self.0.insert(at, (name, value.to_owned()));
    }

    /// Replaces every line of a header by one value.
    pub fn set(&mut self, name: &str, value: &str) {
        let canonical = canonical_name(name);
        match self.0.iter().position(|(n, _)| *n == canonical) {
            Some(at) => {
                self.0[at].1 = value.to_owned();
                let mut seen = 0;
                self.0.retain(|(n, _)| {
                    if *n == canonical {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.0.push((canonical, value.to_owned())),
        }
    }

    /// Removes every line of a header.
    pub fn remove(&mut self, name: &str) {
        let name = canonical(name);
        self.0.retain(|(n, _)| *n != *name);
    }

    /// Removes the first value of a multi-valued header (e.g. the top Via), and
    /// returns it.
    pub fn pop_first(&mut self, name: &str) -> Option<String> {
        let name = canonical(name);
        let at = self.0.iter().position(|(n, _)| *n == *name)?;
        let values: Vec<String> = split_values(&self.0[at].1)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut rest = values.into_iter();
        let first = rest.next();
        let rest: Vec<String> = rest.collect();
        if rest.is_empty() {
            self.0.remove(at);
        } else {
            self.0[at].1 = rest.join(", ");
        }
        first
    }

    /// Replaces the first value of a multi-valued header (e.g. to add `received`).
    pub fn replace_first(&mut self, name: &str, value: &str) {
        if self.pop_first(name).is_some() {
            self.push_front(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("CALL-id"), "Call-ID");
        assert_eq!(canonical_name("x-offhook-token"), "X-Offhook-Token");
        assert_eq!(canonical_name("X-Offhook-Token"), "X-Offhook-Token");
        assert_eq!(canonical_name("Cseq"), "CSeq");
        assert_eq!(canonical_name("V"), "Via");
        assert_eq!(canonical_name("Max-forwards"), "Max-Forwards");
        assert_eq!(canonical_name("X-fOO"), "X-Foo");
        assert_eq!(canonical_name("Ünïcode-x"), "Ünïcode-X");
        let mut h = Headers::default();
        h.push(
            "v",
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
        );
        h.push("Via", "SIP/2.0/UDP c;branch=z9hG4bK3");
        h.push(
            "m",
            "\"A, B\" <sip:a@b;x=\"1,2\">;+sip.instance=\"<urn:uuid:1>\", <sip:c@d>",
        );
        assert_eq!(h.get_all("via").len(), 3);
        assert_eq!(h.get("Via"), Some("SIP/2.0/UDP a;branch=z9hG4bK1"));
        assert_eq!(h.get_all("Contact").len(), 2);
        assert_eq!(
            h.pop_first("Via").as_deref(),
            Some("SIP/2.0/UDP a;branch=z9hG4bK1")
        );
        assert_eq!(
            h.get_all("Via"),
            ["SIP/2.0/UDP b;branch=z9hG4bK2", "SIP/2.0/UDP c;branch=z9hG4bK3"]
        );
        h.push_front("Via", "SIP/2.0/UDP p;branch=z9hG4bK0");
        assert_eq!(h.get("Via"), Some("SIP/2.0/UDP p;branch=z9hG4bK0"));
        h.set("Max-Forwards", "69");
        h.set("max-forwards", "68");
        assert_eq!(h.get_all("Max-Forwards"), ["68"]);
    }
}
