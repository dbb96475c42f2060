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
//! it too: otherwise the two copies would read different rows.
//!
//! The logical optimizer would push each reader's own columns and filters into its copy of a
//! CTE, making the copies different text (dod_impact's `known` is read in four places with
//! four column sets). So before it runs, [`MaterializeRepeated`] marks each CTE or view that
//! is read in more than one place and takes work to compute (a join, an aggregate, a window)
//! as [`Materialized`]: nothing is pushed into it, its copies are planned alike, and
//! [`ShareRepeated`] runs it once, as PostgreSQL and DuckDB do with such a CTE.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayData, RecordBatch};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, TableReference};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream, displayable,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::{StreamExt, TryStreamExt};

/// The analyzer rule (last of the analyzer's, before the optimizer): each CTE or view read in
/// more than one place whose rows take work to compute becomes a [`Materialized`] node.
#[derive(Debug, Default)]
pub struct MaterializeRepeated;

impl AnalyzerRule for MaterializeRepeated {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        // Hashing a plan walks all of it, so aliases are first counted by name (two equal
        // aliases have the same name): only those whose name is read more than once are
        // compared whole. (Hashing every alias, then every node while rewriting, was a third
        // of dod_impact's planning.)
        let mut names = HashMap::<TableReference, usize>::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::SubqueryAlias(alias) = node {
                *names.entry(alias.alias.clone()).or_default() += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        names.retain(|_, n| *n > 1);
        if names.is_empty() {
            return Ok(plan);
        }
        let mut reads = HashMap::<LogicalPlan, usize>::new();
        plan.apply_with_subqueries(|node| {
            if matches!(node, LogicalPlan::SubqueryAlias(alias) if names.contains_key(&alias.alias)) {
                *reads.entry(node.clone()).or_default() += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        reads.retain(|node, n| *n > 1 && takes_work(node));
        if reads.is_empty() {
            return Ok(plan);
        }
        let names = reads.keys().filter_map(alias_of).cloned().collect();
        let repeated = Repeated { names, plans: reads.into_keys().collect() };
        Ok(materialize(plan, &repeated)?.data)
    }

    fn name(&self) -> &str {
        "materialize_repeated"
    }
}

/// The aliases to materialize, and their names (checked first: a name is cheap to compare, a
/// plan is hashed whole).
struct Repeated {
    names: HashSet<TableReference>,
    plans: HashSet<LogicalPlan>,
}

impl Repeated {
    fn contains(&self, node: &LogicalPlan) -> bool {
        alias_of(node).is_some_and(|name| self.names.contains(name)) && self.plans.contains(node)
    }
}

/// The name of an alias node.
fn alias_of(node: &LogicalPlan) -> Option<&TableReference> {
    match node {
        LogicalPlan::SubqueryAlias(alias) => Some(&alias.alias),
        _ => None,
    }
}

/// `plan` with each of `repeated` (and each inside it) wrapped in a [`Materialized`] node.
fn materialize(plan: LogicalPlan, repeated: &Repeated) -> Result<Transformed<LogicalPlan>> {
    plan.transform_down_with_subqueries(|node| {
        if !repeated.contains(&node) {
            return Ok(Transformed::no(node));
        }
        let input = node.map_children(|child| materialize(child, repeated))?.data;
        if let LogicalPlan::SubqueryAlias(alias) = &input
            && is_materialized(&alias.input)
        {
            // An alias of a materialized CTE (`FROM followed f`): kept once is enough.
            return Ok(Transformed::new(input, true, TreeNodeRecursion::Jump));
        }
        let wrapped = LogicalPlan::Extension(Extension { node: Arc::new(Materialized { input }) });
        Ok(Transformed::new(wrapped, true, TreeNodeRecursion::Jump))
    })
}

fn is_materialized(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Extension(e) if e.node.as_any().is::<Materialized>())
}

/// True when computing the rows again would cost more than keeping them: a join, an aggregate
/// or a window (a filtered scan is cheaper to read twice, with each reader's filter pushed in).
/// Never a subtree that refers to an outer query (the optimizer must be able to decorrelate
/// it) or that holds a recursive query.
fn takes_work(plan: &LogicalPlan) -> bool {
    let mut work = false;
    let mut barred = false;
    let _ = plan.apply(|node| {
        work |= matches!(
            node,
            LogicalPlan::Join(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Window(_) | LogicalPlan::Distinct(_)
        );
        barred |= node.contains_outer_reference() || matches!(node, LogicalPlan::RecursiveQuery(_));
        Ok(if barred { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    work && !barred
}

/// A CTE or view read in several places: the optimizer pushes no reader's columns, filters or
/// limits into it (the defaults of [`UserDefinedLogicalNodeCore`]), so every copy is the same.
#[derive(Debug, PartialEq, Eq, PartialOrd, Hash)]
pub struct Materialized {
    input: LogicalPlan,
}

impl UserDefinedLogicalNodeCore for Materialized {
    fn name(&self) -> &str {
        "Materialized"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Materialized: read in several places, computed once")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(Self { input: inputs.swap_remove(0) })
    }
}

/// The local engine's query planner: DataFusion's, which also plans [`Materialized`] nodes.
#[derive(Debug, Default)]
pub struct Planner;

#[async_trait::async_trait]
impl QueryPlanner for Planner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(MaterializedPlanner)])
            .create_physical_plan(plan, session)
            .await
    }
}

/// Plans a [`Materialized`] node as a [`MaterializedExec`] over its input.
#[derive(Debug)]
struct MaterializedPlanner;

#[async_trait::async_trait]
impl ExtensionPlanner for MaterializedPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if node.as_any().downcast_ref::<Materialized>().is_none() {
            return Ok(None);
        }
        Ok(Some(Arc::new(MaterializedExec::new(Arc::clone(&physical_inputs[0])))))
    }
}

/// Its input's rows, unchanged. A boundary for the physical optimizer as [`Materialized`] is
/// for the logical one: no projection is swapped into it and no filter (not even a join's
/// dynamic filter) is pushed through it, so its copies stay the same for [`ShareRepeated`].
#[derive(Debug)]
pub struct MaterializedExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl MaterializedExec {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::clone(input.properties());
        Self { input, properties }
    }
}

impl DisplayAs for MaterializedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "MaterializedExec")
    }
}

impl ExecutionPlan for MaterializedExec {
    fn name(&self) -> &str {
        "MaterializedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn datafusion::physical_plan::PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(MaterializedExec::new(children.swap_remove(0))))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

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
    // A scan of files names them; an in-memory table shows only its sizes, so its rows are
    // named here; any other leaf is the same rows only as the same node.
    if plan.children().is_empty() && !key.contains("file_groups=") {
        match in_memory(plan) {
            Some(rows) => key.push_str(&rows),
            None => key.push_str(&format!(" @{:x}", address(plan))),
        }
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

/// The columns and rows of an in-memory scan, as text that differs when they do: a few rows (a `VALUES`
/// list, planned anew in each copy of a CTE) by their values, more by the buffers that hold
/// them (the same table scanned twice shares them; the plan keeps them alive, so no other
/// data has their addresses).
fn in_memory(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    let source = plan.downcast_ref::<DataSourceExec>()?;
    let memory = source.data_source().downcast_ref::<MemorySourceConfig>()?;
    // Its display shows neither the columns it reads nor their types.
    let mut text = format!(" projection={:?} schema={:?} rows=", memory.projection(), plan.schema());
    for batch in memory.partitions().iter().flatten() {
        if batch.num_rows() <= FEW_ROWS {
            // Debug shows every value of an array this short.
            text.push_str(&format!("{:?};", batch.columns()));
        } else {
            for column in batch.columns() {
                push_buffers(&column.to_data(), &mut text);
            }
            text.push(';');
        }
    }
    Some(text)
}

/// Rows up to which an in-memory batch is named by its values (`Debug` of an Arrow array shows
/// every value up to 20).
const FEW_ROWS: usize = 16;

fn push_buffers(data: &ArrayData, text: &mut String) {
    text.push_str(&format!("{}+{}(", data.offset(), data.len()));
    for buffer in data.buffers() {
        text.push_str(&format!("{:x}/{},", buffer.as_ptr() as usize, buffer.len()));
    }
    if let Some(nulls) = data.nulls() {
        text.push_str(&format!("n{:x},", nulls.buffer().as_ptr() as usize));
    }
    for child in data.child_data() {
        push_buffers(child, text);
    }
    text.push(')');
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
        let (plain, shared, _) = three_contexts(dir).await;
        (plain, shared)
    }

    /// The same two, and a third with [`MaterializeRepeated`] too (as the engine's).
    async fn three_contexts(dir: &std::path::Path) -> (SessionContext, SessionContext, SessionContext) {
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
                .with_config(config.clone())
                .with_default_features()
                .with_physical_optimizer_rule(Arc::new(ShareRepeated))
                .build(),
        );
        let materialized = SessionContext::new_with_state(
            SessionStateBuilder::new()
                .with_config(config)
                .with_default_features()
                .with_analyzer_rule(Arc::new(MaterializeRepeated))
                .with_query_planner(Arc::new(Planner))
                .with_physical_optimizer_rule(Arc::new(ShareRepeated))
                .build(),
        );
        for ctx in [&plain, &shared, &materialized] {
            ctx.register_parquet("f", path.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
        }
        (plain, shared, materialized)
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
    async fn a_cte_read_for_different_columns_and_rows_is_computed_once() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, shared, materialized) = three_contexts(dir.path()).await;
        // One reader wants s where k = 1, the other n: pushed into each copy, the copies differ
        // and ShareRepeated alone runs both.
        let sql = "WITH t AS (SELECT k, sum(v) AS s, count(*) AS n FROM f GROUP BY k) \
                   SELECT 'a' AS side, k, s AS x FROM t WHERE k = 1 \
                   UNION ALL SELECT 'b', k, CAST(n AS DOUBLE) FROM t ORDER BY side, k";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| a    | 1 | 10.5 |") && expected.contains("| b    | 5 | 3.0  |"), "{expected}");
        assert!(!plan(&shared, sql).await.contains("SharedExec"), "{}", plan(&shared, sql).await);
        assert_eq!(rows(&materialized, sql).await, expected);
        let physical = plan(&materialized, sql).await;
        assert_eq!(shared_materialized(&physical), 2, "{physical}");
    }

    #[tokio::test]
    async fn two_different_subqueries_under_one_alias_name_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, _, materialized) = three_contexts(dir.path()).await;
        // Aliases are compared by name first: here `t` names two different aggregates.
        let sql = "SELECT 'a' AS side, s FROM (SELECT k, sum(v) AS s FROM f GROUP BY k) t WHERE k = 1 \
                   UNION ALL SELECT 'b', s FROM (SELECT k, max(v) AS s FROM f GROUP BY k) t WHERE k = 1 \
                   ORDER BY side";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| a    | 10.5 |") && expected.contains("| b    | 5.5  |"), "{expected}");
        assert_eq!(rows(&materialized, sql).await, expected);
        let physical = plan(&materialized, sql).await;
        assert!(!physical.contains("MaterializedExec"), "{physical}");
    }

    #[tokio::test]
    async fn a_filtered_scan_read_twice_keeps_each_readers_filter() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, _, materialized) = three_contexts(dir.path()).await;
        let sql = "WITH t AS (SELECT k, v FROM f WHERE v > 1) \
                   SELECT 'a' AS side, count(*) AS n FROM t WHERE k = 1 \
                   UNION ALL SELECT 'b', count(*) FROM t WHERE k = 5 ORDER BY side";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| a    | 3 |") && expected.contains("| b    | 3 |"), "{expected}");
        assert_eq!(rows(&materialized, sql).await, expected);
        let physical = plan(&materialized, sql).await;
        assert!(!physical.contains("MaterializedExec"), "{physical}");
        assert!(physical.contains("k@0 = 1") && physical.contains("k@0 = 5"), "{physical}");
    }

    #[tokio::test]
    async fn a_correlated_subquery_over_a_materialized_cte_is_decorrelated() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, _, materialized) = three_contexts(dir.path()).await;
        let sql = "WITH t AS (SELECT k, v, count(*) OVER (PARTITION BY k) AS n FROM f) \
                   SELECT k, v FROM t a WHERE v > (SELECT avg(v) FROM t b WHERE b.k = a.k) ORDER BY k, v";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| 1 | 3.0 |") && expected.contains("| 5 | 6.0 |"), "{expected}");
        assert_eq!(rows(&materialized, sql).await, expected);
        assert!(plan(&materialized, sql).await.contains("MaterializedExec"));
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
    async fn a_values_list_planned_in_each_copy_of_a_cte_is_shared_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, _, materialized) = three_contexts(dir.path()).await;
        // Each copy of t has its own VALUES node (the same three rows): the copies are the same.
        let sql = "WITH t AS (SELECT x.item, sum(f.v * x.w) AS s FROM f CROSS JOIN (VALUES ('a', 1.0), ('b', 2.0), ('c', 0.5)) AS x(item, w) GROUP BY x.item) \
                   SELECT 'one' AS side, item, s FROM t WHERE item = 'b' UNION ALL SELECT 'two', item, s FROM t ORDER BY side, item";
        let expected = rows(&plain, sql).await;
        assert!(
            expected.contains("| one  | b    | 45.0  |") && expected.contains("| two  | c    | 11.25 |"),
            "{expected}"
        );
        assert_eq!(rows(&materialized, sql).await, expected);
        // Shared whole (not just the scan of f under it).
        assert_eq!(shared_materialized(&plan(&materialized, sql).await), 2, "{}", plan(&materialized, sql).await);
    }

    /// How many places read a materialized CTE through a [`SharedExec`].
    fn shared_materialized(physical: &str) -> usize {
        let lines: Vec<&str> = physical.lines().map(str::trim).collect();
        lines.windows(2).filter(|w| w[0].starts_with("SharedExec") && w[1] == "MaterializedExec").count()
    }

    #[tokio::test]
    async fn larger_in_memory_tables_of_the_same_shape_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, shared, materialized) = three_contexts(dir.path()).await;
        for ctx in [&plain, &shared, &materialized] {
            // The same 100 rows but the 51st (which Arrow's Debug of an array does not show).
            for (name, middle) in [("m1", 50), ("m2", 5000)] {
                let sql = format!(
                    "CREATE TABLE {name} AS SELECT CASE WHEN value = 50 THEN {middle} ELSE value END AS n FROM generate_series(0, 99)"
                );
                ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            }
        }
        // Each is read twice.
        let sql = "WITH a AS (SELECT count(*) AS c, sum(n) AS s FROM m1), b AS (SELECT count(*) AS c, sum(n) AS s FROM m2) \
                   SELECT * FROM a UNION ALL SELECT * FROM b UNION ALL SELECT * FROM a UNION ALL SELECT * FROM b ORDER BY s";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| 100 | 4950 |") && expected.contains("| 100 | 9900 |"), "{expected}");
        assert_eq!(rows(&shared, sql).await, expected);
        assert_eq!(rows(&materialized, sql).await, expected);
        // Each is computed once: read in two places, its own rows in both.
        let physical = plan(&materialized, sql).await;
        assert_eq!(physical.matches("SharedExec").count(), 4, "{physical}");
    }

    #[tokio::test]
    async fn one_in_memory_table_read_for_two_columns_gives_each_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, shared, materialized) = three_contexts(dir.path()).await;
        for ctx in [&plain, &shared, &materialized] {
            ctx.sql("CREATE TABLE m AS VALUES (1, 10), (2, 20)").await.unwrap().collect().await.unwrap();
        }
        // Two scans of the same batches that differ only in the column they read.
        let sql = "SELECT 'a' AS side, column1 AS x FROM m UNION ALL SELECT 'b', column2 FROM m ORDER BY side, x";
        let expected = rows(&plain, sql).await;
        assert!(expected.contains("| a    | 2  |") && expected.contains("| b    | 20 |"), "{expected}");
        assert_eq!(rows(&shared, sql).await, expected);
        assert_eq!(rows(&materialized, sql).await, expected);
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
