//! The catalog of predefined views: one `.sql` file each under `queries/`, built into the binary.
//! The header comment of a file is the view's documentation; its first line is the question the
//! view answers.

/// A predefined view.
#[derive(Debug, Clone, Copy)]
pub struct ViewDef {
    pub name: &'static str,
    /// The file's text, header comment included.
    pub sql: &'static str,
    /// Part of data-model.md's contract, as opposed to a helper debtlens adds.
    pub core: bool,
}

macro_rules! view {
    ($name:literal, $core:expr) => {
        ViewDef { name: $name, sql: include_str!(concat!("../queries/", $name, ".sql")), core: $core }
    };
}

/// Every view, in an order where each comes after the views it reads.
pub const VIEWS: &[ViewDef] = &[
    view!("analysis_window", false),
    view!("shipped_features", false),
    view!("window_features", false),
    view!("feature_systems", true),
    view!("slowdown_by_system", true),
    view!("delay_by_system", true),
    view!("delay_by_reason", true),
    view!("delay_by_quarter", true),
    view!("incident_impact", true),
    view!("capacity_efficiency", true),
    view!("capacity_split", true),
    view!("debt_cost", true),
    view!("system_health", true),
    view!("dod_compliance", true),
    view!("estimation_accuracy", true),
    view!("velocity_trend", true),
];

/// The SQL functions that read the analysis window.
pub const WINDOW_FUNCTIONS: [&str; 3] = ["window_start", "window_end", "window_days"];

impl ViewDef {
    /// The first line of the header: the question the view answers.
    pub fn description(&self) -> &'static str {
        self.header().next().unwrap_or("")
    }

    /// The header comment without its `--` markers, one entry per line.
    pub fn header(&self) -> impl Iterator<Item = &'static str> {
        self.sql
            .lines()
            .take_while(|l| l.starts_with("--"))
            .map(|l| l.trim_start_matches('-').trim())
            .filter(|l| !l.is_empty())
    }

    /// True when the view depends on the analysis window, directly or through another view.
    pub fn windowed(&self) -> bool {
        references_window(self.sql)
    }
}

pub fn find(name: &str) -> Option<&'static ViewDef> {
    VIEWS.iter().find(|v| v.name.eq_ignore_ascii_case(name))
}

/// The view names closest to a mistyped one, best first.
pub fn closest(name: &str) -> Vec<String> {
    closest_names(name, VIEWS.iter().map(|v| v.name))
}

/// The names among `candidates` closest to a mistyped one, best first (at most three).
pub fn closest_names<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let name = name.to_lowercase();
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| {
            let mut score = strsim::jaro_winkler(&name, &c.to_lowercase());
            if c.contains(&name) || name.contains(c) {
                score += 0.2;
            }
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.75)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, n)| n.to_string()).collect()
}

/// True when SQL text calls a window function or reads a windowed view. Works on identifiers
/// only, so a column that merely contains a view's name does not count.
pub fn references_window(sql: &str) -> bool {
    identifiers(sql).any(|id| {
        WINDOW_FUNCTIONS.iter().any(|f| id.eq_ignore_ascii_case(f))
            || VIEWS.iter().any(|v| v.name.eq_ignore_ascii_case(id) && v.sql != sql && v.windowed())
    })
}

/// The identifiers of SQL text, outside comments and string literals.
fn identifiers(sql: &str) -> impl Iterator<Item = &str> {
    let mut spans = Vec::new();
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += 1;
                }
                i += 1;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                spans.push(&sql[start..i]);
            }
            _ => i += 1,
        }
    }
    spans.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_has_a_question_for_a_header() {
        for v in VIEWS {
            assert!(v.description().ends_with('?'), "{}: {:?}", v.name, v.description());
        }
    }

    #[test]
    fn windowed_views_are_found_through_other_views() {
        let windowed: Vec<&str> = VIEWS.iter().filter(|v| v.windowed()).map(|v| v.name).collect();
        assert_eq!(
            windowed,
            [
                "analysis_window",
                "window_features",
                "slowdown_by_system",
                "delay_by_system",
                "delay_by_reason",
                "incident_impact",
                "debt_cost",
                "system_health",
                "dod_compliance",
                "estimation_accuracy"
            ]
        );
    }

    #[test]
    fn a_view_name_in_a_comment_or_string_is_not_a_reference() {
        assert!(!references_window("SELECT 'slowdown_by_system' -- window_features\nFROM features"));
        assert!(references_window("select * from SLOWDOWN_BY_SYSTEM"));
    }

    #[test]
    fn a_mistyped_view_finds_the_closest_names() {
        assert_eq!(closest("slowdown")[0], "slowdown_by_system");
        assert_eq!(closest("delay_by_sytem")[0], "delay_by_system");
        assert!(closest("zzzz").is_empty());
    }
}
