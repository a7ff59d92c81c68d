//! Message framing on stream transports (TCP, TLS; RFC 3261 s18.3): bytes in, whole
//! messages out, cut by Content-Length, which is mandatory there. CRLF keep-alives
//! (RFC 5626 s3.5.1) between messages are skipped. A message whose headers or
//! declared body exceed the size limit is an error: the connection must close.

/// Why a stream cannot be framed any further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// Headers longer than the limit without an end.
    #[error("headers exceed {0} bytes")]
    HeadersTooLong(usize),
    /// Content-Length missing or not a number.
    #[error("missing or bad Content-Length on a stream")]
    ContentLength,
    /// The whole message would exceed the limit.
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

/// Accumulates stream bytes and cuts messages.
#[derive(Debug)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max: usize,
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

impl StreamFramer {
    /// A framer refusing messages larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { buf: Vec::new(), max }
    }

    /// Whether no part of a message is buffered (only keep-alives, or nothing).
    pub fn is_empty(&self) -> bool {
        self.buf.iter().all(|b| *b == b'\r' || *b == b'\n')
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if one is buffered.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        self.buf.drain(..skip);
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > self.max {
                return Err(FramingError::HeadersTooLong(self.max));
            }
            return Ok(None);
        };
        let body_at = end + 4;
        let length = content_length(&self.buf[..end]).ok_or(FramingError::ContentLength)?;
        let total = body_at
            .checked_add(length)
            .ok_or(FramingError::TooLarge(usize::MAX))?;
        if total > self.max {
            return Err(FramingError::TooLarge(total));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_joined_messages() {
        let m = "OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";
        let mut f = StreamFramer::new(1000);
        f.push(b"\r\n\r\n");
        f.push(&m.as_bytes()[..10]);
        assert_eq!(f.next_message(), Ok(None));
        f.push(&m.as_bytes()[10..]);
        f.push(m.as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap(), m.as_bytes());
        assert_eq!(f.next_message().unwrap().unwrap(), m.as_bytes());
        assert_eq!(f.next_message(), Ok(None));
    }

    #[test]
    fn refuses_oversize_and_unframed() {
        let mut f = StreamFramer::new(64);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert!(matches!(f.next_message(), Err(FramingError::TooLarge(_))));
        let mut f = StreamFramer::new(64);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n");
        assert_eq!(f.next_message(), Err(FramingError::ContentLength));
        let mut f = StreamFramer::new(16);
        f.push(&[b'x'; 40]);
        assert_eq!(f.next_message(), Err(FramingError::HeadersTooLong(16)));
    }
}
