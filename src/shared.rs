//! Work a plan repeats, done once. DataFusion plans a CTE (or a view) once for each place that
//! reads it: `debt_cost` and `system_health` scan and filter the window's features for
//! `slowdown_by_system` and again for `system_tax`; `dod_impact` reads its features (`f`) in
//! four places. [`ShareRepeated`] finds the subtrees of a physical plan that
//! appear more than once and have the same text (same operators, expressions, files and
//! partitions: the same rows), and puts one [`SharedExec`] over a single copy in each place:
//! the first reader of a partition computes it and keeps its batches (counted against the
//! memory pool, so `--memory-limit` still holds), the others replay them.
//!
//! A subtree whose scans are narrowed at run time by a dynamic filter (a hash join's build
//! side, a top-k's bound) is shared only when the operator that produces the filter is inside
//! it too: otherwise the two copies would read different rows. Copies of a CTE into which the
//! optimizer pushed different projections are different text and run each (dod_impact's
//! `known`, read four times with four column sets).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream, displayable,
};
use futures::{StreamExt, TryStreamExt};

/// The physical optimizer rule: run last, after every rule that rewrites the plan.
#[derive(Debug, Default)]
pub struct ShareRepeated;

impl PhysicalOptimizerRule for ShareRepeated {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        let mut keys = HashMap::new();
        key_of(&plan, &mut keys);
        let chosen = choose(&plan, &keys)?;
        if chosen.is_empty() {
            return Ok(plan);
        }
        let mut spools = HashMap::new();
        share(plan, &keys, &chosen, &mut spools)
    }

    fn name(&self) -> &str {
        "share_repeated"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The subtrees to share: the largest ones that appear more than once, then, in the plan as
/// it reads once they are shared (each shared subtree once), the largest that still repeat.
fn choose(plan: &Arc<dyn ExecutionPlan>, keys: &HashMap<usize, String>) -> Result<HashSet<String>> {
    let mut chosen = HashSet::new();
    loop {
        let mut counts = HashMap::new();
        walk_once(plan, keys, &chosen, &mut HashSet::new(), &mut |_, key| {
            *counts.entry(key.to_string()).or_insert(0usize) += 1;
            Ok(true)
        })?;
        let mut added = Vec::new();
        walk_once(plan, keys, &chosen, &mut HashSet::new(), &mut |node, key| {
            if chosen.contains(key) {
                return Ok(true);
            }
            if added.iter().any(|a| a == key) {
                return Ok(false);
            }
            if counts[key] > 1 && reads_data(node) && self_contained(node)? {
                added.push(key.to_string());
                return Ok(false);
            }
            Ok(true)
        })?;
        if added.is_empty() {
            return Ok(chosen);
        }
        chosen.extend(added);
    }
}

/// What `walk_once` calls on a node and its key: whether to go into its children.
type Visit<'a> = dyn FnMut(&Arc<dyn ExecutionPlan>, &str) -> Result<bool> + 'a;

/// Visits the plan top-down as it runs once `chosen` subtrees are shared: the first copy of
/// each is visited, the others are not. `visit` says whether to go into a node's children.
fn walk_once(
    plan: &Arc<dyn ExecutionPlan>,
    keys: &HashMap<usize, String>,
    chosen: &HashSet<String>,
    seen: &mut HashSet<String>,
    visit: &mut Visit,
) -> Result<()> {
    let key = &keys[&address(plan)];
    if chosen.contains(key) && !seen.insert(key.clone()) {
        return Ok(());
    }
    if visit(plan, key)? {
        for child in plan.children() {
            walk_once(child, keys, chosen, seen, visit)?;
        }
    }
    Ok(())
}

/// A node's identity for this rule: the address of its `Arc`.
fn address(plan: &Arc<dyn ExecutionPlan>) -> usize {
    Arc::as_ptr(plan) as *const () as usize
}

/// The text of a subtree: each node's one-line description, then its children's, nested.
/// Two subtrees with the same text compute the same rows.
fn key_of(plan: &Arc<dyn ExecutionPlan>, keys: &mut HashMap<usize, String>) -> String {
    if let Some(key) = keys.get(&address(plan)) {
        return key.clone();
    }
    let mut key = displayable(plan.as_ref()).one_line().to_string();
    // A scan of files names them; any other leaf (an in-memory table shows only its sizes) is
    // the same rows only as the same node.
    if plan.children().is_empty() && !key.contains("file_groups=") {
        key.push_str(&format!(" @{:x}", address(plan)));
    }
    key.push('[');
    for child in plan.children() {
        key.push_str(&key_of(child, keys));
        key.push(';');
    }
    key.push(']');
    keys.insert(address(plan), key.clone());
    key
}

/// `plan` with each chosen subtree replaced by a reader of one spool; the spool's own subtree
/// is shared the same way.
fn share(
    plan: Arc<dyn ExecutionPlan>,
    keys: &HashMap<usize, String>,
    chosen: &HashSet<String>,
    spools: &mut HashMap<String, Arc<Spool>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let key = &keys[&address(&plan)];
    if let Some(spool) = spools.get(key) {
        return Ok(Arc::new(SharedExec::new(Arc::clone(spool))));
    }
    let plan = plan
        .map_children(|child| {
            let new = share(Arc::clone(&child), keys, chosen, spools)?;
            let changed = !Arc::ptr_eq(&new, &child);
            Ok(Transformed::new_transformed(new, changed))
        })?
        .data;
    if !chosen.contains(key) {
        return Ok(plan);
    }
    let spool = Arc::new(Spool::new(plan));
    spools.insert(key.clone(), Arc::clone(&spool));
    Ok(Arc::new(SharedExec::new(spool)))
}

/// True when the subtree reads a table (anything else is cheaper to compute again than to keep).
fn reads_data(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.children().is_empty() && plan.name() == "DataSourceExec" || plan.children().into_iter().any(reads_data)
}

/// True when every dynamic filter the subtree's operators read is produced inside it.
fn self_contained(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let mut produced = HashSet::new();
    let mut read = HashSet::new();
    let mut pending = vec![Arc::clone(plan)];
    while let Some(node) = pending.pop() {
        for expr in node.dynamic_expressions_produced() {
            produced.extend(expr.expression_id());
        }
        node.apply_expressions(&mut |root| {
            root.apply(|expr| {
                read.extend(expr.expression_id());
                Ok(TreeNodeRecursion::Continue)
            })?;
            Ok(TreeNodeRecursion::Continue)
        })?;
        pending.extend(node.children().into_iter().cloned());
    }
    Ok(read.is_subset(&produced))
}

/// One copy of a repeated subtree and, per output partition, its batches once computed.
struct Spool {
    plan: Arc<dyn ExecutionPlan>,
    partitions: Vec<tokio::sync::OnceCell<Kept>>,
}

/// A partition's batches and the memory they hold in the pool, until the plan is dropped.
struct Kept {
    batches: Vec<RecordBatch>,
    _reservation: MemoryReservation,
}

impl Spool {
    fn new(plan: Arc<dyn ExecutionPlan>) -> Self {
        let n = plan.properties().output_partitioning().partition_count();
        Self { plan, partitions: (0..n).map(|_| tokio::sync::OnceCell::new()).collect() }
    }

    async fn batches(&self, partition: usize, context: Arc<TaskContext>) -> Result<Vec<RecordBatch>> {
        let kept = self.partitions[partition]
            .get_or_try_init(|| async {
                let reservation =
                    MemoryConsumer::new(format!("SharedExec[{partition}]")).register(context.memory_pool());
                let mut stream = self.plan.execute(partition, Arc::clone(&context))?;
                let mut batches = Vec::new();
                while let Some(batch) = stream.try_next().await? {
                    reservation.try_grow(batch.get_array_memory_size())?;
                    batches.push(batch);
                }
                Ok::<_, datafusion::error::DataFusionError>(Kept { batches, _reservation: reservation })
            })
            .await?;
        Ok(kept.batches.clone())
    }
}

/// A reader of a spool: the spool's rows, partition by partition.
pub struct SharedExec {
    spool: Arc<Spool>,
    properties: Arc<PlanProperties>,
}

impl SharedExec {
    fn new(spool: Arc<Spool>) -> Self {
        let properties = Arc::clone(spool.plan.properties());
        Self { spool, properties }
    }
}

impl fmt::Debug for SharedExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedExec").finish_non_exhaustive()
    }
}

impl DisplayAs for SharedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        // Each place the subtree is read shows it; it runs once.
        write!(f, "SharedExec: computed once, its rows kept for each place that reads them")
    }
}

impl ExecutionPlan for SharedExec {
    fn name(&self) -> &str {
        "SharedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.spool.plan]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn datafusion::physical_plan::PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let child = children.swap_remove(0);
        if Arc::ptr_eq(&child, &self.spool.plan) {
            return Ok(self);
        }
        // Another input: a spool of its own (correct, no longer shared).
        Ok(Arc::new(SharedExec::new(Arc::new(Spool::new(child)))))
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SharedExec::new(Arc::new(Spool::new(Arc::clone(&self.spool.plan).reset_state()?)))))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let spool = Arc::clone(&self.spool);
        let batches = futures::stream::once(async move {
            let batches = spool.batches(partition, context).await?;
            Ok::<_, datafusion::error::DataFusionError>(futures::stream::iter(batches.into_iter().map(Ok)))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), batches.boxed())))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    use super::*;

    /// A context without the rule and one with it, each reading `f` (k, v) from one Parquet
    /// file of two row groups: k is 1 on the four rows of the first and 5 on the three of the
    /// second (so a filter on k skips a whole group).
    async fn contexts(dir: &std::path::Path) -> (SessionContext, SessionContext) {
        let path = dir.join("f.parquet");
        let writer = SessionContext::new();
        writer
            .sql(&format!(
                "COPY (SELECT * FROM (VALUES (1, 0.5), (1, 1.5), (1, 3.0), (1, 5.5), (5, 2.0), (5, 4.0), (5, 6.0)) AS t(k, v)) \
                 TO '{}' STORED AS PARQUET OPTIONS (max_row_group_size 4)",
                path.display()
            ))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let config = SessionConfig::new().with_target_partitions(2);
        let plain = SessionContext::new_with_config(config.clone());
        let shared = SessionContext::new_with_state(
            SessionStateBuilder::new()
                .with_config(config)
                .with_default_features()
                .with_physical_optimizer_rule(Arc::new(ShareRepeated))
                .build(),
        );
        for ctx in [&plain, &shared] {
            ctx.register_parquet("f", path.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
        }
        (plain, shared)
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> String {
        pretty_format_batches(&ctx.sql(sql).await.unwrap().collect().await.unwrap()).unwrap().to_string()
    }

    async fn plan(ctx: &SessionContext, sql: &str) -> String {
        let physical = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        displayable(physical.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn a_cte_read_twice_runs_once_with_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, shared) = contexts(dir.path()).await;
        let sql = "WITH t AS (SELECT k, sum(v) AS s, count(*) AS n FROM f GROUP BY k) \
                   SELECT 'a' AS side, * FROM t UNION ALL SELECT 'b', * FROM t ORDER BY side, k";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| b    | 1 | 10.5 | 4 |"), "{expected}");
        assert_eq!(rows(&shared, sql).await, expected);
        assert_eq!(plan(&shared, sql).await.matches("SharedExec").count(), 2, "{}", plan(&shared, sql).await);
        assert!(!plan(&plain, sql).await.contains("SharedExec"));
    }

    #[tokio::test]
    async fn a_scan_narrowed_by_a_join_outside_it_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, shared) = contexts(dir.path()).await;
        // The same scan of f probes two joins whose build sides differ: a dynamic filter from
        // each narrows its own copy, so the copies are different rows.
        let sql = "SELECT 'one' AS side, count(*) AS n FROM f JOIN (SELECT 1 AS k) x ON f.k = x.k \
                   UNION ALL SELECT 'five', count(*) FROM f JOIN (SELECT 5 AS k) y ON f.k = y.k ORDER BY side";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| five | 3 |") && expected.contains("| one  | 4 |"), "{expected}");
        assert_eq!(rows(&shared, sql).await, expected);
    }

    #[tokio::test]
    async fn in_memory_tables_of_the_same_shape_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, shared) = contexts(dir.path()).await;
        for ctx in [&plain, &shared] {
            ctx.sql("CREATE TABLE m1 AS VALUES (1, 'a')").await.unwrap().collect().await.unwrap();
            ctx.sql("CREATE TABLE m2 AS VALUES (2, 'b')").await.unwrap().collect().await.unwrap();
        }
        let sql = "SELECT * FROM m1 UNION ALL SELECT * FROM m2 ORDER BY 1";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| 2       | b       |"), "{expected}");
        assert_eq!(rows(&shared, sql).await, expected);
    }
}
