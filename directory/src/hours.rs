//! Icon opening hours: a small text format that site owners can type, parsed once,
//! and asked "is it open at this instant?" in the icon's IANA time zone.
//!
//! Format: rules separated by `;`, each `DAYS RANGE [RANGE ...]` where DAYS is
//! `daily`, a day (`mon` .. `sun`) or a span (`mon-fri`), and RANGE is `HH:MM-HH:MM`
//! (end exclusive, `24:00` allowed). Empty text means always open.
//! Example: `mon-fri 09:00-12:00 13:00-17:30; sat 10:00-14:00`.

use chrono::{DateTime, Datelike, Days, NaiveTime, TimeZone as _, Timelike, Utc};
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

    /// The open ranges per weekday (Monday first) as minutes of the day, start
    /// inclusive, end exclusive, in order; `None` when always open.
    pub fn weekly(&self) -> Option<[Vec<(u16, u16)>; 7]> {
        if self.always {
            return None;
        }
        let mut days = self.days.clone();
        for ranges in &mut days {
            ranges.sort_unstable();
        }
        Some(days)
    }

    /// The next instant after `at` when a range opens, in time zone `tz`, within
    /// the coming week; `None` when always open or never open. A start that falls
    /// in a daylight-saving gap opens when the clocks reach it (an hour later).
    pub fn next_opening(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let days = self.weekly()?;
        let today = at.with_timezone(&tz).date_naive();
        for offset in 0..=7u64 {
            let date = today.checked_add_days(Days::new(offset))?;
            let day = date.weekday().num_days_from_monday() as usize;
            for &(from, _) in &days[day] {
                let time = NaiveTime::from_hms_opt(u32::from(from / 60), u32::from(from % 60), 0)?;
                let local = date.and_time(time);
                let start = tz.from_local_datetime(&local).earliest().or_else(|| {
                    tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                        .earliest()
                })?;
                let start = start.with_timezone(&Utc);
                if start > at {
                    return Some(start);
                }
            }
        }
        None
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
    fn next_opening_in_the_icons_time_zone() {
        let hours = OpeningHours::parse("sat 10:00-14:00; mon-fri 13:00-17:30 09:00-12:00").unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // Tuesday 07:00 Berlin (06:00 UTC): 09:00 Berlin the same day.
        assert_eq!(hours.next_opening(at(24, 6, 0), berlin), Some(at(24, 8, 0)));
        // Tuesday 12:30 Berlin, lunch: 13:00.
        assert_eq!(hours.next_opening(at(24, 11, 30), berlin), Some(at(24, 12, 0)));
        // Friday evening: Saturday 10:00.
        assert_eq!(hours.next_opening(at(27, 19, 0), berlin), Some(at(28, 9, 0)));
        // Saturday afternoon: Monday 09:00.
        assert_eq!(hours.next_opening(at(28, 15, 0), berlin), Some(at(30, 8, 0)));
        let weekly = hours.weekly().unwrap();
        assert_eq!(weekly[0], [(540, 720), (780, 1050)], "sorted");
        assert!(weekly[6].is_empty());
        assert_eq!(
            OpeningHours::parse("")
                .unwrap()
                .next_opening(at(24, 6, 0), berlin),
            None
        );
        assert_eq!(OpeningHours::parse("").unwrap().weekly(), None);
        // 02:30 does not exist in Berlin on 2026-03-29 (clocks go 02:00 -> 03:00).
        let gap = OpeningHours::parse("sun 02:30-04:00").unwrap();
        let before = Utc.with_ymd_and_hms(2026, 3, 28, 12, 0, 0).unwrap();
        assert_eq!(
            gap.next_opening(before, berlin),
            Some(Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap())
        );
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
