//! The analysis window (data-model.md, "The analysis window"): the session setting that scopes
//! every windowed view, and the SQL functions `window_start()`, `window_end()` and
//! `window_days()` through which the views read it.
//!
//! The window is a value: each session (a CLI run, a shell, a batch job, a server connection)
//! has its own `WindowSettings`, resolves them into a `Window` and plans its statements under a
//! configuration that carries it (`WindowConfig`). The functions fold to literals when a
//! statement is planned, so the Parquet scan can prune row groups on them, and two sessions
//! over one engine never see each other's window.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::{Error, Result};
use crate::time::parse_as_of;

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

/// The longest window a user may ask for (a hundred years).
pub const MAX_WINDOW_DAYS: u32 = 36_500;

/// The window as a caller set it: an as_of (`None`: the default, resolved per store snapshot)
/// and a length. A value each session owns; nothing else shares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSettings {
    pub as_of: Option<DateTime<Utc>>,
    pub days: u32,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self { as_of: None, days: DEFAULT_WINDOW_DAYS }
    }
}

/// The names of the window's settings, as `SET debtlens.<name>` and `\set <name>` spell them.
pub const SETTINGS: [&str; 2] = ["as_of", "window_days"];

impl WindowSettings {
    /// Sets one setting by name (`as_of` or `window_days`, with or without the `debtlens.`
    /// prefix) from its text; `DEFAULT` (any case) puts it back to `defaults`'.
    pub fn set(&mut self, name: &str, value: &str, defaults: &WindowSettings) -> Result<()> {
        let value = value.trim();
        let reset = value.eq_ignore_ascii_case("default");
        match setting_name(name)? {
            "as_of" if reset => self.as_of = defaults.as_of,
            "as_of" => self.as_of = Some(parse_as_of(value)?),
            _ if reset => self.days = defaults.days,
            _ => self.days = parse_days(value)?,
        }
        Ok(())
    }

    /// Puts one setting back to `defaults`' value.
    pub fn reset(&mut self, name: &str, defaults: &WindowSettings) -> Result<()> {
        match setting_name(name)? {
            "as_of" => self.as_of = defaults.as_of,
            _ => self.days = defaults.days,
        }
        Ok(())
    }
}

/// `as_of` or `window_days` for a name with or without its `debtlens.` prefix, any case.
pub fn setting_name(name: &str) -> Result<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("debtlens.").unwrap_or(&lower);
    SETTINGS.into_iter().find(|s| *s == bare).ok_or_else(|| {
        Error::Usage(format!(
            "unknown setting `{name}`: the window's settings are debtlens.as_of and debtlens.window_days"
        ))
    })
}

/// A window length: a whole number of days from 1 to 36500.
pub fn parse_days(value: &str) -> Result<u32> {
    match value.trim().parse::<u32>() {
        Ok(d) if (1..=MAX_WINDOW_DAYS).contains(&d) => Ok(d),
        _ => Err(Error::Usage(format!(
            "invalid window_days `{value}`: expected a whole number of days from 1 to {MAX_WINDOW_DAYS}"
        ))),
    }
}

/// The resolved window of one statement, carried in its session's configuration
/// (`ConfigOptions::extensions`), where the window functions read it when the statement is
/// planned. Set by `Session` only: `SET debtlens....` goes through `WindowSettings`.
#[derive(Debug, Clone, Default)]
pub struct WindowConfig {
    pub window: Option<Window>,
}

impl ConfigExtension for WindowConfig {
    const PREFIX: &'static str = "debtlens_window";
}

impl ExtensionOptions for WindowConfig {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }
    fn set(&mut self, key: &str, _value: &str) -> DfResult<()> {
        Err(DataFusionError::Configuration(format!("debtlens_window.{key} is set by the session, not by SQL")))
    }
    fn entries(&self) -> Vec<ConfigEntry> {
        vec![]
    }
}

/// Which end of the window a function returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Start,
    End,
    Days,
}

/// `window_start()`, `window_end()`, `window_days()`: the window of the statement's session, as
/// literals. Stateless: the window comes with the configuration a statement is planned under.
#[derive(Debug, PartialEq, Eq, Hash)]
struct WindowFn {
    part: Part,
    signature: Signature,
}

impl WindowFn {
    fn value(&self, config: &ConfigOptions) -> DfResult<ScalarValue> {
        let Some(w) = config.extensions.get::<WindowConfig>().and_then(|c| c.window) else {
            return Err(DataFusionError::Execution("the analysis window has not been resolved for this query".into()));
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
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value(&args.config_options)?))
    }
    fn simplify(&self, _args: Vec<Expr>, info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(self.value(info.config_options())?, None)))
    }
}

/// The three window functions.
pub fn functions() -> Vec<ScalarUDF> {
    [Part::Start, Part::End, Part::Days]
        .into_iter()
        .map(|part| ScalarUDF::new_from_impl(WindowFn { part, signature: Signature::nullary(Volatility::Stable) }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_days_long_and_open_at_the_start() {
        let w = Window { as_of: parse_as_of("2026-10-31").unwrap(), days: 90, source: AsOfSource::Given };
        assert_eq!(w.start().to_rfc3339(), "2026-08-02T23:59:59.999999+00:00");
    }

    #[test]
    fn settings_take_their_names_with_or_without_the_prefix_and_default_resets() {
        let defaults = WindowSettings { as_of: None, days: 90 };
        let mut s = defaults;
        s.set("debtlens.as_of", "2026-10-31", &defaults).unwrap();
        s.set("WINDOW_DAYS", "30", &defaults).unwrap();
        assert_eq!(s.days, 30);
        assert_eq!(s.as_of.unwrap().to_rfc3339(), "2026-10-31T23:59:59.999999+00:00");
        s.set("as_of", "DEFAULT", &defaults).unwrap();
        assert_eq!(s.as_of, None);
        s.reset("debtlens.window_days", &defaults).unwrap();
        assert_eq!(s, defaults);
        assert!(s.set("window_days", "0", &defaults).unwrap_err().to_string().contains("1 to 36500"));
        assert!(s.set("debtlens.memory", "1", &defaults).unwrap_err().to_string().contains("debtlens.as_of"));
    }
}
