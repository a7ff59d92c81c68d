//! Icon opening hours: a small text format that site owners can type, parsed once,
//! and asked "is it open at this instant?" in the icon's IANA time zone.
//!
//! Format: rules separated by `;`, each `DAYS RANGE [RANGE ...]` where DAYS is
//! `daily`, a day (`mon` .. `sun`) or a span (`mon-fri`), and RANGE is `HH:MM-HH:MM`
//! (end exclusive, `24:00` allowed). Empty text means always open.
//! Example: `mon-fri 09:00-12:00 13:00-17:30; sat 10:00-14:00`.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use crate::error::{DirectoryError, Result};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parsed opening hours: per weekday (Monday first), minute-of-day ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    always: bool,
    days: [Vec<(u16, u16)>; 7],
}

impl OpeningHours {
    /// Parses the text format above; errors say which part is wrong.
    pub fn parse(text: &str) -> Result<Self> {
        let mut hours = Self {
            always: text.trim().is_empty(),
            days: Default::default(),
        };
        for rule in text.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let mut parts = rule.split_whitespace();
            // split_whitespace of a non-empty trimmed rule yields at least one part.
            let days = parse_days(parts.next().unwrap_or_default())?;
            let ranges: Vec<(u16, u16)> = parts.map(parse_range).collect::<Result<_>>()?;
            if ranges.is_empty() {
                return Err(bad(format!("'{rule}' has days but no HH:MM-HH:MM range")));
            }
            for day in days {
                hours.days[day].extend(&ranges);
            }
        }
        Ok(hours)
    }

    /// Whether `at` falls in an open range, in time zone `tz`.
    pub fn is_open(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        if self.always {
            return true;
        }
        let local = at.with_timezone(&tz);
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = u16::try_from(local.hour() * 60 + local.minute()).unwrap_or(u16::MAX);
        self.days[day]
            .iter()
            .any(|&(from, to)| (from..to).contains(&minute))
    }
}

/// Parses an IANA time zone name such as `Europe/Berlin`.
pub(crate) fn timezone(name: &str) -> Result<Tz> {
    name.parse::<Tz>()
        .map_err(|_| DirectoryError::invalid("timezone", format!("'{name}' is not an IANA time zone name")))
}

fn bad(reason: String) -> DirectoryError {
    DirectoryError::invalid("opening_hours", reason)
}

fn day_index(name: &str) -> Result<usize> {
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(name))
        .ok_or_else(|| bad(format!("'{name}' is not a day (mon..sun or daily)")))
}

fn parse_days(spec: &str) -> Result<Vec<usize>> {
    if spec.eq_ignore_ascii_case("daily") {
        return Ok((0..7).collect());
    }
    match spec.split_once('-') {
        Some((from, to)) => {
            let (from, to) = (day_index(from)?, day_index(to)?);
            if from > to {
                return Err(bad(format!("'{spec}' runs backwards")));
            }
            Ok((from..=to).collect())
        }
        None => Ok(vec![day_index(spec)?]),
    }
}

fn parse_minute(text: &str) -> Result<u16> {
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| bad(format!("'{text}' is not a time HH:MM")))
}

fn parse_range(text: &str) -> Result<(u16, u16)> {
    let (from, to) = text
        .split_once('-')
        .ok_or_else(|| bad(format!("'{text}' is not a range HH:MM-HH:MM")))?;
    let (from, to) = (parse_minute(from)?, parse_minute(to)?);
    if from >= to {
        return Err(bad(format!("'{text}' ends before it starts")));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn open_and_closed() {
        let hours = OpeningHours::parse("mon-fri 09:00-12:00 13:00-17:30; sat 10:00-14:00").unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Tuesday 2026-11-24 10:00 Berlin = 09:00 UTC
        assert!(hours.is_open(Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(), berlin));
        // 12:30 Berlin: lunch break
        assert!(!hours.is_open(Utc.with_ymd_and_hms(2026, 11, 24, 11, 30, 0).unwrap(), berlin));
        // Sunday
        assert!(!hours.is_open(Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap(), berlin));
        assert!(OpeningHours::parse("").unwrap().is_open(Utc::now(), berlin));
    }

    #[test]
    fn refuses_bad_text() {
        for bad in [
            "mon",
            "fri-mon 09:00-10:00",
            "mon 9-10",
            "mon 10:00-09:00",
            "xyz 09:00-10:00",
            "mon 25:00-26:00",
        ] {
            assert!(OpeningHours::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(OpeningHours::parse("daily 00:00-24:00").is_ok());
        assert!(timezone("Mars/Base").is_err());
    }
}
