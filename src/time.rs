//! Dates and times as users write them: the one parser that ingest (cells) and the analysis
//! window (`--as-of`, `SET debtlens.as_of`) share. Everything is UTC.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// Parses an as-of value: a date means the end of that day in UTC; a date-time with `T` or a
/// space, with or without an offset (none means UTC), means that instant.
pub fn parse_as_of(s: &str) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let end_of_day = date.and_time(NaiveTime::MIN) + Duration::days(1) - Duration::microseconds(1);
        return Ok(Utc.from_utc_datetime(&end_of_day));
    }
    parse_instant(s).ok_or_else(|| {
        Error::Usage(format!(
            "invalid date `{s}`: expected YYYY-MM-DD or an ISO-8601 date-time such as 2026-10-31T18:00:00Z"
        ))
    })
}

/// An ISO-8601 date-time with `T` or a space, with or without an offset (none means UTC).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let with_t = s.replacen(' ', "T", 1);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(t) = DateTime::parse_from_str(&with_t, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let naive = with_t.strip_suffix('Z').unwrap_or(&with_t);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_the_end_of_that_day_in_utc() {
        let t = parse_as_of("2026-10-31").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-10-31T23:59:59.999999+00:00");
    }

    #[test]
    fn date_times_with_t_or_space_with_or_without_offset() {
        assert_eq!(parse_as_of("2026-10-31T12:00:00Z").unwrap().to_rfc3339(), "2026-10-31T12:00:00+00:00");
        assert_eq!(parse_as_of("2026-10-31 12:00:00").unwrap().to_rfc3339(), "2026-10-31T12:00:00+00:00");
        assert_eq!(parse_as_of("2026-10-31T14:00:00+02:00").unwrap().to_rfc3339(), "2026-10-31T12:00:00+00:00");
        assert_eq!(parse_as_of("2026-10-31 12:30").unwrap().to_rfc3339(), "2026-10-31T12:30:00+00:00");
    }

    #[test]
    fn a_bad_date_says_what_is_expected() {
        let err = parse_as_of("31/10/2026").unwrap_err().to_string();
        assert!(err.contains("31/10/2026") && err.contains("YYYY-MM-DD"), "{err}");
    }
}
