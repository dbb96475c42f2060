//! The analysis window (data-model.md, "The analysis window"): the session setting that scopes
//! every windowed view, and the SQL functions `window_start()`, `window_end()` and
//! `window_days()` through which the views read it.
//!
//! The functions fold to literals when a query is planned, so a view planned after `\set as_of`
//! sees the new window, and the Parquet scan can prune row groups on it.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{Error, Result};

pub const DEFAULT_WINDOW_DAYS: u32 = 90;

/// Where the end of the window came from, so that outputs can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOfSource {
    /// Given by the user (`--as-of`, `\set as_of`, the server's configuration).
    Given,
    /// The newest shipped_at of a shipped feature.
    NewestShipped,
    /// No feature has shipped: the current time.
    Now,
}

/// The window (as_of - days, as_of].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub as_of: DateTime<Utc>,
    pub days: u32,
    pub source: AsOfSource,
}

impl Window {
    /// The exclusive start of the window.
    pub fn start(&self) -> DateTime<Utc> {
        self.as_of - Duration::days(i64::from(self.days))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.source {
            AsOfSource::Given => "",
            AsOfSource::NewestShipped => ", as_of = newest shipped feature",
            AsOfSource::Now => ", as_of = now: no shipped features",
        };
        write!(
            f,
            "window: {} days, ({} .. {}]{}",
            self.days,
            self.start().format("%Y-%m-%d %H:%M:%S UTC"),
            self.as_of.format("%Y-%m-%d %H:%M:%S UTC"),
            why
        )
    }
}

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

/// The session's window, shared by the engine and the window functions. `None` until it is
/// resolved: the default as_of needs a query, which is only run when a query needs it.
#[derive(Debug, Default)]
pub struct WindowState {
    given_as_of: RwLock<Option<DateTime<Utc>>>,
    days: RwLock<Option<u32>>,
    resolved: RwLock<Option<Window>>,
}

impl WindowState {
    pub fn new(as_of: Option<DateTime<Utc>>, days: u32) -> Self {
        Self { given_as_of: RwLock::new(as_of), days: RwLock::new(Some(days)), resolved: RwLock::new(None) }
    }

    pub fn days(&self) -> u32 {
        self.days.read().expect("window lock").unwrap_or(DEFAULT_WINDOW_DAYS)
    }

    pub fn given_as_of(&self) -> Option<DateTime<Utc>> {
        *self.given_as_of.read().expect("window lock")
    }

    /// Sets as_of (`None` restores the default) and forgets the resolved window.
    pub fn set_as_of(&self, as_of: Option<DateTime<Utc>>) {
        *self.given_as_of.write().expect("window lock") = as_of;
        *self.resolved.write().expect("window lock") = None;
    }

    pub fn set_days(&self, days: u32) {
        *self.days.write().expect("window lock") = Some(days);
        *self.resolved.write().expect("window lock") = None;
    }

    pub fn resolved(&self) -> Option<Window> {
        *self.resolved.read().expect("window lock")
    }

    pub fn resolve(&self, window: Window) {
        *self.resolved.write().expect("window lock") = Some(window);
    }
}

/// Which end of the window a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Start,
    End,
    Days,
}

/// `window_start()`, `window_end()`, `window_days()`: the window in force, as literals.
#[derive(Debug)]
struct WindowFn {
    part: Part,
    signature: Signature,
    state: Arc<WindowState>,
}

impl PartialEq for WindowFn {
    fn eq(&self, other: &Self) -> bool {
        self.part == other.part && Arc::ptr_eq(&self.state, &other.state)
    }
}
impl Eq for WindowFn {}
impl Hash for WindowFn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.part.hash(state);
    }
}

impl WindowFn {
    fn value(&self) -> DfResult<ScalarValue> {
        let Some(w) = self.state.resolved() else {
            return Err(datafusion::error::DataFusionError::Execution(
                "the analysis window has not been resolved for this query".into(),
            ));
        };
        Ok(match self.part {
            Part::Start => ScalarValue::TimestampMicrosecond(Some(w.start().timestamp_micros()), Some("UTC".into())),
            Part::End => ScalarValue::TimestampMicrosecond(Some(w.as_of.timestamp_micros()), Some("UTC".into())),
            Part::Days => ScalarValue::Int64(Some(i64::from(w.days))),
        })
    }
}

impl ScalarUDFImpl for WindowFn {
    fn name(&self) -> &str {
        match self.part {
            Part::Start => "window_start",
            Part::End => "window_end",
            Part::Days => "window_days",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.part {
            Part::Start | Part::End => crate::schema::timestamp(),
            Part::Days => DataType::Int64,
        })
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value()?))
    }
    fn simplify(&self, _args: Vec<Expr>, _info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(self.value()?, None)))
    }
}

/// The three window functions over one shared state.
pub fn functions(state: &Arc<WindowState>) -> Vec<ScalarUDF> {
    [Part::Start, Part::End, Part::Days]
        .into_iter()
        .map(|part| {
            ScalarUDF::new_from_impl(WindowFn {
                part,
                signature: Signature::nullary(Volatility::Stable),
                state: Arc::clone(state),
            })
        })
        .collect()
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

    #[test]
    fn the_window_is_days_long_and_open_at_the_start() {
        let w = Window { as_of: parse_as_of("2026-10-31").unwrap(), days: 90, source: AsOfSource::Given };
        assert_eq!(w.start().to_rfc3339(), "2026-08-02T23:59:59.999999+00:00");
    }
}
