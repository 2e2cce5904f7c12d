//! Calendar dates and timestamps without a date library: the core needs only
//! civil dates (`YYYY-MM-DD`) and milliseconds since the Unix epoch.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use autosurgeon::{Hydrate, Reconcile};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
///
/// ```
/// use sambung_core::Timestamp;
/// assert!(Timestamp::now().as_millis() > 1_700_000_000_000);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Reconcile,
)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct Timestamp(pub i64);

#[cfg(feature = "ffi")]
uniffi::custom_newtype!(Timestamp, i64);

// Hand-written so that `Option<Timestamp>` hydrates too: the derive for
// newtypes does not forward the scalar hooks that `Option` calls.
impl Hydrate for Timestamp {
    fn hydrate_int(i: i64) -> Result<Self, autosurgeon::HydrateError> {
        Ok(Timestamp(i))
    }
}

impl Timestamp {
    /// The current time from the system clock.
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// The calendar date of this instant in the given offset from UTC, in hours.
    pub fn date_at_offset(self, offset_hours: i64) -> CivilDate {
        // Saturating: an instant comes from documents, which a tampered
        // app writes (`created_at` of i64::MAX must not overflow).
        let days = self
            .0
            .saturating_add(offset_hours.saturating_mul(3_600_000))
            .div_euclid(86_400_000);
        CivilDate::from_days(days)
    }

    /// "Today" for the "not in the future" checks: the date in WIT (UTC+9),
    /// Indonesia's easternmost zone, so a date that is already today anywhere
    /// in the country is never called future.
    pub fn today_in_indonesia(self) -> CivilDate {
        self.date_at_offset(9)
    }
}

/// A validated calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
}

impl CivilDate {
    /// Builds a date when it exists in the calendar.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(CivilDate { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        CivilDate::new(num(0..4)? as i32, num(5..7)? as u8, num(8..10)? as u8)
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn to_days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (`civil_from_days`).
    pub fn from_days(days: i64) -> Self {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        CivilDate { year, month, day }
    }
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Whether `t` is a time of day, `HH:MM` on the 24-hour clock.
pub fn is_time_of_day(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && b[..2].iter().chain(&b[3..]).all(|c| c.is_ascii_digit())
        && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && t[3..].parse::<u8>().is_ok_and(|m| m < 60)
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in a month of a year.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A date as written by the user (`YYYY-MM-DD`), kept as text so that a bad
/// date is reported with every other field error instead of failing the parse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Reconcile)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct Date(pub String);

#[cfg(feature = "ffi")]
uniffi::custom_newtype!(Date, String);

impl Hydrate for Date {
    fn hydrate_string(s: &str) -> Result<Self, autosurgeon::HydrateError> {
        Ok(Date(s.to_owned()))
    }
}

impl Date {
    /// The calendar date, when the text is a real `YYYY-MM-DD` date.
    pub fn civil(&self) -> Option<CivilDate> {
        CivilDate::parse(&self.0)
    }
}

impl From<CivilDate> for Date {
    fn from(d: CivilDate) -> Self {
        Date(d.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_real_dates_only() {
        assert_eq!(CivilDate::parse("2024-02-29"), CivilDate::new(2024, 2, 29));
        assert!(CivilDate::parse("2023-02-29").is_none());
        assert!(CivilDate::parse("2023-13-01").is_none());
        assert!(CivilDate::parse("2023-1-01").is_none());
        assert!(CivilDate::parse("2023-01-0a").is_none());
        assert!(CivilDate::parse("+023-01-01").is_none());
        assert!(CivilDate::parse("").is_none());
    }

    #[test]
    fn today_is_taken_in_wit() {
        // 2026-11-27 16:30 UTC is already 2026-11-28 in WIT (UTC+9).
        let t = Timestamp(1_795_797_000_000);
        assert_eq!(t.date_at_offset(0).to_string(), "2026-11-27");
        assert_eq!(t.today_in_indonesia().to_string(), "2026-11-28");
    }

    proptest! {
        #[test]
        fn days_roundtrip(days in -1_000_000i64..1_000_000) {
            let d = CivilDate::from_days(days);
            prop_assert_eq!(d.to_days(), days);
            prop_assert_eq!(CivilDate::parse(&d.to_string()).filter(|_| d.year >= 0 && d.year <= 9999), (d.year >= 0 && d.year <= 9999).then_some(d));
        }
    }
}
