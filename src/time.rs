//! Dates, times and durations as users write them: the one parser that ingest (cells) and the
//! analysis window (`--as-of`, `SET debtlens.as_of`) share, and the durations of the flags and
//! of `statement_timeout`. Everything is UTC.

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

/// A timestamp as PostgreSQL's input reads it, the forms drivers send as parameters: a date
/// (`2025-06-01`: midnight), a date-time with `T` or a space, and an optional zone after the
/// time or after a space (`+00`, `+05:30`, `-0800`, `Z`, `UTC`; none means UTC). pgjdbc's
/// `setDate` sends `2025-06-01 +00`.
pub fn parse_pg_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let (rest, offset_seconds) = split_zone(s)?;
    let rest = rest.trim_end();
    let naive = if let Ok(date) = NaiveDate::parse_from_str(rest, "%Y-%m-%d") {
        date.and_time(NaiveTime::MIN)
    } else {
        let with_t = rest.replacen(' ', "T", 1);
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
            .iter()
            .find_map(|fmt| NaiveDateTime::parse_from_str(&with_t, fmt).ok())?
    };
    Some(Utc.from_utc_datetime(&(naive - Duration::seconds(offset_seconds))))
}

/// A trailing zone (`Z`, `UTC`, `+HH`, `+HH:MM`, `+HHMM`, either sign) and the text before it.
fn split_zone(s: &str) -> Option<(&str, i64)> {
    for suffix in ["Z", "z", "UTC", "utc", "+00:00"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            return Some((rest, 0));
        }
    }
    // A sign that starts the zone comes after the time (a digit) or a space, never inside the date.
    let Some(at) = s.rfind(['+', '-']).filter(|&at| at >= 10) else { return Some((s, 0)) };
    let zone = &s[at + 1..];
    let digits: String = zone.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    if hours > 15 || minutes > 59 {
        return None;
    }
    let sign = if s.as_bytes()[at] == b'-' { -1 } else { 1 };
    Some((&s[..at], sign * (hours * 3600 + minutes * 60)))
}

/// A duration as PostgreSQL's settings and debtlens's flags take it: `500`, `500ms`, `2s`,
/// `1min`, `1h`, `7d` (the default unit is the millisecond). Lower-case units.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "" | "ms" => n,
        "s" => n.checked_mul(1000)?,
        "min" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

/// A duration as the flags write it: `7d`, `24h`, `30min`, else seconds.
pub fn duration_text(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s % 86_400 == 0 && s >= 172_800 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 && s > 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 && s > 0 => format!("{}min", s / 60),
        _ => format!("{}s", d.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_postgresql_reads_driver_parameters() {
        let at = |s: &str| parse_pg_timestamp(s).map(|t| t.to_rfc3339());
        let midnight = Some("2025-06-01T00:00:00+00:00".to_string());
        assert_eq!(at("2025-06-01 +00"), midnight);
        assert_eq!(at("2025-06-01"), midnight);
        assert_eq!(at("2025-06-01 00:00:00+00"), midnight);
        assert_eq!(at("2025-06-01T02:00:00+02:00"), midnight);
        assert_eq!(at("2025-05-31 16:00:00-0800"), midnight);
        assert_eq!(at("2025-06-01 00:00:00Z"), midnight);
        assert_eq!(at("2025-06-01 10:11:12.000123 UTC"), Some("2025-06-01T10:11:12.000123+00:00".into()));
        assert_eq!(at("2025-06-01 05:30:00+05:30"), midnight);
        for bad in ["2025-06-01 +1", "2025-13-01", "June 1st", "2025-06-01 00:00:00+99", ""] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

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
