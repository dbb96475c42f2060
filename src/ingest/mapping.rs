//! Mappings for real exports (`--map FILE.toml`, or a built-in preset such as `--map jira`):
//! which input column, constant or conversion feeds each column of the table. A table column
//! the mapping does not name is read from the input column of the same name, as without one.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use super::rows::{Raw, split_list};
use crate::error::{Error, Result};
use crate::schema::Table;

/// The built-in presets: (name, table, TOML).
const PRESETS: &[(&str, Table, &str)] = &[
    ("jira", Table::Features, include_str!("presets/jira-features.toml")),
    ("jira", Table::Backlog, include_str!("presets/jira-backlog.toml")),
    ("devlake", Table::Features, include_str!("presets/devlake-features.toml")),
    ("devlake", Table::Incidents, include_str!("presets/devlake-incidents.toml")),
    ("gitlab", Table::Deployments, include_str!("presets/gitlab-deployments.toml")),
    ("github", Table::Deployments, include_str!("presets/github-deployments.toml")),
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    /// The table the mapping is for; a mapping used for another table is refused.
    table: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
    columns: BTreeMap<String, ColumnMap>,
}

/// How one table column is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnMap {
    /// The input column, or several whose values are joined into one list.
    from: Option<OneOrMany>,
    /// A constant for every row.
    value: Option<String>,
    /// Converts a number: seconds, minutes, hours or days into weeks (40-hour, 5-day work weeks)
    /// or days (8-hour work days).
    unit: Option<Unit>,
    /// Splits a text value into a list at this separator (values trimmed).
    split: Option<String>,
    /// Reads a date or date-time in this chrono format (e.g. `%d/%b/%y %I:%M %p`), as UTC.
    date_format: Option<String>,
    /// Replaces values (matched case-insensitively), e.g. `{ Highest = "sev1" }`.
    values: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Unit {
    SecondsToWeeks,
    MinutesToWeeks,
    HoursToWeeks,
    DaysToWeeks,
    SecondsToDays,
    MinutesToDays,
    HoursToDays,
}

impl Unit {
    fn factor(self) -> f64 {
        const HOURS_PER_DAY: f64 = 8.0;
        const DAYS_PER_WEEK: f64 = 5.0;
        match self {
            Unit::SecondsToWeeks => 1.0 / (3600.0 * HOURS_PER_DAY * DAYS_PER_WEEK),
            Unit::MinutesToWeeks => 1.0 / (60.0 * HOURS_PER_DAY * DAYS_PER_WEEK),
            Unit::HoursToWeeks => 1.0 / (HOURS_PER_DAY * DAYS_PER_WEEK),
            Unit::DaysToWeeks => 1.0 / DAYS_PER_WEEK,
            Unit::SecondsToDays => 1.0 / (3600.0 * HOURS_PER_DAY),
            Unit::MinutesToDays => 1.0 / (60.0 * HOURS_PER_DAY),
            Unit::HoursToDays => 1.0 / HOURS_PER_DAY,
        }
    }
}

/// A loaded mapping for one table.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    columns: BTreeMap<String, ColumnMap>,
}

impl Mapping {
    /// A preset by name, or a TOML file by path.
    pub fn load(spec: &str, table: Table) -> Result<Self> {
        let (name, text) = if let Some((name, _, text)) = PRESETS.iter().find(|(n, t, _)| *n == spec && *t == table) {
            (name.to_string(), text.to_string())
        } else if PRESETS.iter().any(|(n, _, _)| *n == spec) {
            let tables: Vec<&str> = PRESETS.iter().filter(|(n, _, _)| *n == spec).map(|(_, t, _)| t.name()).collect();
            return Err(Error::Usage(format!(
                "the `{spec}` mapping is for {}, not {}",
                tables.join(" and "),
                table.name()
            )));
        } else {
            let path = Path::new(spec);
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Usage(format!("--map {spec}: not a preset (jira, devlake) and not a readable file: {e}"))
            })?;
            (path.display().to_string(), text)
        };
        let file: MappingFile = toml::from_str(&text).map_err(|e| Error::Usage(format!("mapping {name}: {e}")))?;
        if let Some(t) = file.table.as_deref().filter(|t| *t != table.name()) {
            return Err(Error::Usage(format!("mapping {name} is for {t}, not {}", table.name())));
        }
        let known = super::rows::columns(table);
        for (column, map) in &file.columns {
            if !known.iter().any(|c| c.name == column) {
                return Err(Error::Usage(format!("mapping {name}: {} has no column `{column}`", table.name())));
            }
            if map.from.is_some() == map.value.is_some() {
                return Err(Error::Usage(format!(
                    "mapping {name}, column {column}: give exactly one of `from` and `value`"
                )));
            }
        }
        Ok(Self { name, columns: file.columns })
    }

    pub fn column(&self, name: &str) -> Option<&ColumnMap> {
        self.columns.get(name)
    }

    /// `ingest --set COLUMN=VALUE`: the column takes this value on every row, over what the
    /// mapping (if any) says; for what an export does not carry, such as the system a GitLab
    /// project's deployments are of.
    pub fn with_constants(
        mapping: Option<Mapping>,
        table: Table,
        constants: &[(String, String)],
    ) -> Result<Option<Mapping>> {
        if constants.is_empty() {
            return Ok(mapping);
        }
        let mut mapping = mapping.unwrap_or_else(|| Mapping { name: "--set".into(), columns: BTreeMap::new() });
        let known = super::rows::columns(table);
        for (column, value) in constants {
            if !known.iter().any(|c| c.name == column) {
                let names: Vec<&str> = known.iter().map(|c| c.name).collect();
                return Err(Error::Usage(format!(
                    "--set {column}=...: {} has no column `{column}` (its columns: {})",
                    table.name(),
                    names.join(", ")
                )));
            }
            let constant = ColumnMap {
                from: None,
                value: Some(value.clone()),
                unit: None,
                split: None,
                date_format: None,
                values: None,
            };
            mapping.columns.insert(column.clone(), constant);
        }
        Ok(Some(mapping))
    }
}

impl ColumnMap {
    /// The input columns this reads.
    pub fn sources(&self) -> Vec<&str> {
        match &self.from {
            Some(OneOrMany::One(c)) => vec![c.as_str()],
            Some(OneOrMany::Many(cs)) => cs.iter().map(String::as_str).collect(),
            None => Vec::new(),
        }
    }

    /// Makes the cell from the input fields it reads (in the order of `sources`).
    pub fn apply<'a>(&self, fields: Vec<&Raw<'a>>) -> Raw<'a> {
        if let Some(value) = &self.value {
            return Raw::Text(value.clone().into());
        }
        let separator = self.split.as_deref();
        if fields.len() > 1 || separator.is_some() {
            let mut items = Vec::new();
            for field in fields {
                match field {
                    Raw::Text(s) => match separator {
                        Some(sep) => {
                            items.extend(s.split(sep).map(str::trim).filter(|v| !v.is_empty()).map(|v| self.replace(v)))
                        }
                        None => items.extend(split_list(s).iter().map(|v| self.replace(v))),
                    },
                    Raw::List(l) => items.extend(l.iter().map(|v| self.replace(v))),
                    Raw::Null => {}
                }
            }
            return if items.is_empty() { Raw::Null } else { Raw::List(items) };
        }
        let Some(Raw::Text(text)) = fields.first() else { return fields.first().map_or(Raw::Null, |r| (*r).clone()) };
        let text = self.replace(text.trim());
        if let Some(unit) = self.unit {
            return match text.parse::<f64>() {
                Ok(x) => Raw::Text(format!("{}", x * unit.factor()).into()),
                Err(_) => Raw::Text(text.into()),
            };
        }
        if let Some(format) = &self.date_format {
            let parsed = NaiveDateTime::parse_from_str(&text, format)
                .ok()
                .or_else(|| NaiveDate::parse_from_str(&text, format).ok().and_then(|d| d.and_hms_opt(0, 0, 0)));
            return Raw::Text(parsed.map_or(text, |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).into());
        }
        Raw::Text(text.into())
    }

    fn replace(&self, value: &str) -> String {
        self.values
            .as_ref()
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(value)).map(|(_, v)| v.clone()))
            .unwrap_or_else(|| value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_for_its_table() {
        for (name, table, _) in PRESETS {
            Mapping::load(name, *table).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(Mapping::load("jira", Table::Capacity).unwrap_err().to_string().contains("for features and backlog"));
    }

    #[test]
    fn units_constants_lists_values_and_dates() {
        let text = r#"
            [columns.estimated_weeks]
            from = "Estimate"
            unit = "seconds_to_weeks"
            [columns.work_type]
            value = "quality"
            [columns.systems]
            from = ["C1", "C2"]
            [columns.severity]
            from = "Priority"
            values = { Highest = "sev1" }
            [columns.started_at]
            from = "Created"
            date_format = "%d/%b/%y %I:%M %p"
        "#;
        let file: MappingFile = toml::from_str(text).unwrap();
        let c = &file.columns;
        let t = |s: &str| Raw::Text(s.to_string().into());
        assert_eq!(c["estimated_weeks"].apply(vec![&t("288000")]), t("2"));
        assert_eq!(c["work_type"].apply(vec![]), t("quality"));
        assert_eq!(c["systems"].apply(vec![&t("auth"), &Raw::Null]), Raw::List(vec!["auth".into()]));
        assert_eq!(c["severity"].apply(vec![&t("highest")]), t("sev1"));
        assert_eq!(c["started_at"].apply(vec![&t("12/Mar/24 10:15 AM")]), t("2024-03-12T10:15:00Z"));
    }

    #[test]
    fn unknown_keys_and_columns_are_refused() {
        let err = toml::from_str::<MappingFile>("[columns.title]\nfrom = \"x\"\nfrmo = \"y\"").unwrap_err().to_string();
        assert!(err.contains("frmo"), "{err}");
    }
}
