//! SIP and SIPS URIs (RFC 3261 s19.1) and `tel:` URIs, parsed for routing:
//! scheme, user, host, port, parameters. Unknown parts are kept as text.

/// A parsed URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `sip`, `sips` or `tel`, lowercase.
    pub scheme: String,
    /// User part (still %-escaped), if any.
    pub user: Option<String>,
    /// Host: a name, an IPv4 address or a bracketed IPv6 reference.
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// `;name[=value]` parameters in order.
    pub params: Vec<(String, Option<String>)>,
}

/// Why text is not a URI we route on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad URI")]
pub struct UriError;

impl Uri {
    /// Parses `scheme:[user[:password]@]host[:port][;params][?headers]`.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let (scheme, rest) = text.trim().split_once(':').ok_or(UriError)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "tel" {
            let (number, params) = split_params(rest);
            return Ok(Self {
                scheme,
                user: Some(number.to_owned()),
                host: String::new(),
                port: None,
                params,
            });
        }
        if scheme != "sip" && scheme != "sips" {
            return Err(UriError);
        }
        // The user part may hold `?` and `;` (RFC 4475 s3.1.1.2); headers cannot hold `@`.
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let hostport = hostport.split('?').next().unwrap_or(hostport);
        let (hostport, params) = split_params(hostport);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or(UriError)?;
            (format!("[{addr}]"), after.strip_prefix(':'))
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
        if !valid_host {
            return Err(UriError);
        }
        let port = port.map(|p| p.parse::<u16>().map_err(|_| UriError)).transpose()?;
        let user = userinfo
            .map(|u| u.split(':').next().unwrap_or(u).to_owned())
            .filter(|u| !u.is_empty());
        Ok(Self {
            scheme,
            user,
            host: host.to_ascii_lowercase(),
            port,
            params,
        })
    }

    /// A parameter's value (`Some("")` for a flag like `;lr`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// The user part with %-escapes decoded (lossy for invalid escapes).
    pub fn user_unescaped(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        let bytes = user.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let decoded = (bytes[i] == b'%')
                .then(|| bytes.get(i + 1..i + 3))
                .flatten()
                .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
            match decoded {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

fn split_params(text: &str) -> (&str, Vec<(String, Option<String>)>) {
    let mut parts = text.split(';');
    let head = parts.next().unwrap_or("");
    let params = parts
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
            None => (p.trim().to_ascii_lowercase(), None),
        })
        .collect();
    (head, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        let u = Uri::parse("sip:alice:pw@Atlanta.example.com:5070;transport=tcp;lr?subject=x").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!((u.host.as_str(), u.port), ("atlanta.example.com", Some(5070)));
        assert_eq!((u.param("transport"), u.param("lr")), (Some("tcp"), Some("")));
        let v6 = Uri::parse("sips:[2001:db8::10]:5061").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[2001:db8::10]", Some(5061)));
        assert_eq!(
            Uri::parse("tel:+4930123").unwrap().user.as_deref(),
            Some("+4930123")
        );
        assert_eq!(
            Uri::parse("sip:%61lice@h").unwrap().user_unescaped().as_deref(),
            Some("alice")
        );
        for bad in ["", "http://x", "sip:", "sip:a@", "sip:h:99999", "sip:[::1"] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
