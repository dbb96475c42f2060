//! The catalog of predefined views: one `.sql` file each under `queries/`, built into the binary.
//! The header comment of a file is the view's documentation; its first line is the question the
//! view answers.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionState;
use datafusion::prelude::SessionContext;

/// A predefined view.
#[derive(Debug, Clone, Copy)]
pub struct ViewDef {
    pub name: &'static str,
    /// The file's text, header comment included.
    pub sql: &'static str,
    /// Part of data-model.md's contract, as opposed to a helper debtlens adds.
    pub core: bool,
    /// For a view of rows (no ORDER BY of its own, so that the views reading it sort nothing):
    /// the key its rows are listed by when it is run on its own, so that the listing is the
    /// same on any layout and thread count.
    pub key: Option<&'static str>,
}

macro_rules! view {
    ($name:literal, $core:expr) => {
        ViewDef { name: $name, sql: include_str!(concat!("../queries/", $name, ".sql")), core: $core, key: None }
    };
    ($name:literal, $core:expr, $key:literal) => {
        ViewDef { name: $name, sql: include_str!(concat!("../queries/", $name, ".sql")), core: $core, key: Some($key) }
    };
}

/// Every view, in an order where each comes after the views it reads.
pub const VIEWS: &[ViewDef] = &[
    view!("analysis_window", false),
    view!("shipped_features", false, "feature_id"),
    view!("window_features", false, "feature_id"),
    view!("feature_systems", true, "feature_id, system"),
    view!("slowdown_by_system", true),
    view!("system_tax", true),
    view!("backlog_forecast", true),
    view!("delay_by_system", true),
    view!("delay_by_reason", true),
    view!("delay_by_quarter", true),
    view!("incident_impact", true),
    view!("capacity_efficiency", true),
    view!("capacity_split", true),
    view!("debt_cost", true),
    view!("delay_cost", true),
    view!("deployment_incidents", true),
    view!("delivery_performance", true),
    view!("system_health", true),
    view!("dod_compliance", true),
    view!("dod_impact", true),
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
        windowed_views().contains(&self.name)
    }
}

impl ViewDef {
    /// The query that runs the view on its own: its rows by its key when it has one.
    pub fn query(&self) -> String {
        match self.key {
            Some(key) => format!("SELECT * FROM {} ORDER BY {key}", self.name),
            None => format!("SELECT * FROM {}", self.name),
        }
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
/// (the one SQL scanner's), so a view's name in a string or a comment does not count.
pub fn references_window(sql: &str) -> bool {
    reads_window(&crate::sql::Scanned::new(sql))
}

/// `references_window` of a statement scanned already.
pub fn reads_window(scanned: &crate::sql::Scanned) -> bool {
    scanned.identifiers().any(|id| {
        WINDOW_FUNCTIONS.iter().any(|f| id.eq_ignore_ascii_case(f))
            || windowed_views().iter().any(|v| v.eq_ignore_ascii_case(id))
    })
}

/// The names of the views that read the window, directly or through another view (worked out
/// once, in dependency order: `VIEWS` lists each view after those it reads).
fn windowed_views() -> &'static [&'static str] {
    static WINDOWED: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    WINDOWED.get_or_init(|| {
        let mut windowed: Vec<&'static str> = Vec::new();
        for view in VIEWS {
            let reads_window = crate::sql::identifiers(view.sql).into_iter().any(|id| {
                WINDOW_FUNCTIONS.iter().any(|f| id.eq_ignore_ascii_case(f))
                    || windowed.iter().any(|w| w.eq_ignore_ascii_case(id))
            });
            if reads_window {
                windowed.push(view.name);
            }
        }
        windowed
    })
}

/// The engine's default schema: the store's tables, registered when the store is opened, and
/// every view of `VIEWS`, planned the first time a statement reads it (and kept). Planning all
/// of them up front made every command slow to start (`view analysis_window` took 65 ms, now
/// 16 ms, release build); a statement now pays only for the views it reads. A view is planned
/// under the context's own state, as `CREATE VIEW` planned it before.
pub struct ViewSchema {
    tables: MemorySchemaProvider,
    /// The context's state, as it is when a view is first read (`None` once the context is gone).
    state: Box<dyn Fn() -> Option<SessionState> + Send + Sync>,
    planned: HashMap<&'static str, tokio::sync::OnceCell<Arc<dyn TableProvider>>>,
}

impl ViewSchema {
    /// Installs the schema as `ctx`'s default one, in place of its empty in-memory schema.
    pub fn install(ctx: &SessionContext) -> DfResult<()> {
        let weak = ctx.state_weak_ref();
        let schema = Self {
            tables: MemorySchemaProvider::new(),
            state: Box::new(move || weak.upgrade().map(|state| state.read().clone())),
            planned: VIEWS.iter().map(|v| (v.name, tokio::sync::OnceCell::new())).collect(),
        };
        let state = ctx.state();
        let names = &state.config().options().catalog;
        let catalog = ctx
            .catalog(&names.default_catalog)
            .ok_or_else(|| DataFusionError::Internal(format!("no catalog {}", names.default_catalog)))?;
        catalog.register_schema(&names.default_schema, Arc::new(schema))?;
        Ok(())
    }

    async fn plan(&self, view: &ViewDef) -> DfResult<Arc<dyn TableProvider>> {
        let state = (self.state)().ok_or_else(|| DataFusionError::Internal("the engine's context is gone".into()))?;
        let plan = state
            .create_logical_plan(view.sql)
            .await
            .map_err(|e| DataFusionError::Plan(format!("queries/{}.sql: {e}", view.name)))?;
        Ok(Arc::new(ViewTable::new(plan, Some(view.sql.to_string()))))
    }
}

impl std::fmt::Debug for ViewSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewSchema").field("tables", &self.tables.table_names()).finish_non_exhaustive()
    }
}

#[async_trait]
impl SchemaProvider for ViewSchema {
    fn table_names(&self) -> Vec<String> {
        // No table takes a view's name (`register_table` refuses it).
        let mut names = self.tables.table_names();
        names.extend(VIEWS.iter().map(|v| v.name.to_string()));
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.tables.table(name).await? {
            return Ok(Some(table));
        }
        let Some(view) = VIEWS.iter().find(|v| v.name == name) else {
            return Ok(None);
        };
        let cell = &self.planned[view.name];
        Ok(Some(Arc::clone(cell.get_or_try_init(|| self.plan(view)).await?)))
    }

    fn register_table(&self, name: String, table: Arc<dyn TableProvider>) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if VIEWS.iter().any(|v| v.name == name) {
            return Err(DataFusionError::Plan(format!("{name} is one of debtlens's views; choose another name")));
        }
        self.tables.register_table(name, table)
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.tables.deregister_table(name)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.table_exist(name) || VIEWS.iter().any(|v| v.name == name)
    }
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
                "system_tax",
                "backlog_forecast",
                "delay_by_system",
                "delay_by_reason",
                "incident_impact",
                "debt_cost",
                "delay_cost",
                "deployment_incidents",
                "delivery_performance",
                "system_health",
                "dod_compliance",
                "dod_impact",
                "estimation_accuracy"
            ]
        );
    }

    #[test]
    fn a_view_name_in_a_comment_or_string_is_not_a_reference() {
        assert!(!references_window("SELECT 'slowdown_by_system' -- window_features\nFROM features"));
        assert!(references_window("select * from SLOWDOWN_BY_SYSTEM"));
        assert!(references_window("select * from \"slowdown_by_system\""));
        assert!(!references_window("SELECT 1 /* window_start() */"));
    }

    #[test]
    fn a_mistyped_view_finds_the_closest_names() {
        assert_eq!(closest("slowdown")[0], "slowdown_by_system");
        assert_eq!(closest("delay_by_sytem")[0], "delay_by_system");
        assert!(closest("zzzz").is_empty());
    }
}
