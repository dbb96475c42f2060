//! The sample generator: a deterministic, seeded store that looks like a real organisation's
//! history. The same seed and sizes give the same rows on every machine, so the sample built
//! into the binary and the large stores of the benchmarks come from one piece of code.
//!
//! Each system has a debt factor: a feature takes that many times its estimate on the slowest
//! system it touches (auth-service about 3.2x, payment-flow 1.8x, product-catalog 1.0x, which
//! shows as about 1.1x because some of its features also touch slower systems); the debt grows
//! over the two years, so the trend views have something to show.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};

use crate::error::Result;
use crate::schema::Table;

/// Rows per record batch (and so per row group written at a time).
const BATCH_ROWS: usize = 64 * 1024;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec {
    pub features: usize,
    pub incidents: usize,
    /// Planned items in the backlog.
    pub backlog: usize,
    pub seed: u64,
}

impl Default for SampleSpec {
    /// The size of the sample built into the binary.
    fn default() -> Self {
        Self { features: 2000, incidents: 3000, backlog: 48, seed: 42 }
    }
}

/// A system and its debt: how many times its estimate a feature centred on it takes by the end
/// of the history, and how prone it is to incidents.
struct System {
    name: &'static str,
    factor: f64,
    reasons: &'static [&'static str],
}

const SYSTEMS: &[System] = &[
    System { name: "auth-service", factor: 3.2, reasons: &["legacy-code", "missing-tests", "knowledge-silo"] },
    System { name: "billing-ledger", factor: 2.6, reasons: &["legacy-code", "manual-deploy", "data-migration"] },
    System { name: "inventory-sync", factor: 2.3, reasons: &["flaky-tests", "data-migration"] },
    System { name: "légacy-crm", factor: 2.0, reasons: &["legacy-code", "knowledge-silo", "missing-docs"] },
    System { name: "order-pipeline", factor: 1.9, reasons: &["flaky-tests", "environment-outage"] },
    System { name: "payment-flow", factor: 1.7, reasons: &["missing-tests", "manual-deploy", "compliance-review"] },
    System { name: "reporting-etl", factor: 1.6, reasons: &["data-migration", "missing-docs"] },
    System { name: "search-indexer", factor: 1.5, reasons: &["environment-outage", "dependency-upgrade"] },
    System { name: "mobile-bff", factor: 1.4, reasons: &["dependency-upgrade", "unclear-requirements"] },
    System { name: "notification-hub", factor: 1.3, reasons: &["flaky-tests", "unclear-requirements"] },
    System { name: "api-gateway", factor: 1.25, reasons: &["dependency-upgrade", "environment-outage"] },
    System { name: "user-profile", factor: 1.2, reasons: &["unclear-requirements", "missing-docs"] },
    System { name: "product-catalog", factor: 1.0, reasons: &["unclear-requirements"] },
    System { name: "admin-console", factor: 1.0, reasons: &["unclear-requirements"] },
];

/// A team, the systems it mostly works on (indexes into SYSTEMS), its head-count, its
/// definition-of-done discipline and its quality target.
struct Team {
    name: &'static str,
    systems: &'static [usize],
    engineers: f64,
    dod: f64,
    quality_target: f64,
}

const TEAMS: &[Team] = &[
    Team { name: "identity", systems: &[0, 11, 10], engineers: 8.0, dod: 0.7, quality_target: 0.2 },
    Team { name: "checkout", systems: &[5, 1, 4], engineers: 11.0, dod: 0.8, quality_target: 0.2 },
    Team { name: "catalog", systems: &[12, 7, 2], engineers: 9.0, dod: 0.9, quality_target: 0.2 },
    Team { name: "growth", systems: &[9, 8, 3], engineers: 7.0, dod: 0.6, quality_target: 0.15 },
    Team { name: "platform", systems: &[10, 6, 13, 0], engineers: 10.0, dod: 0.85, quality_target: 0.3 },
    Team { name: "fulfilment", systems: &[4, 2, 1], engineers: 8.0, dod: 0.75, quality_target: 0.2 },
];

const GENERAL_REASONS: &[&str] = &["unclear-requirements", "scope-change", "waiting-on-review", "vacation"];
const VERBS: &[&str] =
    &["Add", "Rework", "Migrate", "Speed up", "Harden", "Redesign", "Localise", "Expose", "Simplify"];
const OBJECTS: &[&str] = &[
    "checkout step",
    "login flow",
    "search filters",
    "invoice export",
    "stock alerts",
    "push preferences",
    "audit log",
    "rate limits",
    "order history",
    "product badges",
    "refund handling",
    "SSO for partners",
    "dashboard widgets",
    "café menu sync",
];
const SYMPTOMS: &[&str] = &[
    "timeouts under load",
    "elevated error rate",
    "stale data served",
    "failed deploy rolled back",
    "memory leak",
    "queue backlog",
    "certificate expiry",
    "bad migration",
];

/// The first day of the history and the last day a feature ships.
fn history() -> (DateTime<Utc>, DateTime<Utc>) {
    (Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2026, 10, 30, 18, 0, 0).unwrap())
}

/// SplitMix64: small, fast, and the same on every platform and every version of debtlens, which
/// a crate's generator does not promise. The roadmap's Monte Carlo draws from it too.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.f64() * n as f64) as usize % n.max(1)
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u = self.f64().max(f64::MIN_POSITIVE);
        let v = self.f64();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Log-normal with mean 1.
    pub(crate) fn noise(&mut self, sigma: f64) -> f64 {
        (sigma * self.normal() - sigma * sigma / 2.0).exp()
    }
}

/// One table's rows, as record batches of the table's schema.
pub struct SampleStore {
    pub features: Vec<RecordBatch>,
    pub incidents: Vec<RecordBatch>,
    pub capacity: Vec<RecordBatch>,
    pub backlog: Vec<RecordBatch>,
    pub deployments: Vec<RecordBatch>,
}

impl SampleStore {
    pub fn table(&self, table: Table) -> &[RecordBatch] {
        match table {
            Table::Features => &self.features,
            Table::Incidents => &self.incidents,
            Table::Capacity => &self.capacity,
            Table::Backlog => &self.backlog,
            Table::Deployments => &self.deployments,
        }
    }
}

/// Generates a store.
pub fn generate(spec: SampleSpec) -> Result<SampleStore> {
    let mut rng = Rng(spec.seed);
    // Values come from streams of their own, so that adding them left every other column as it was.
    let (features, shipped) = features(&mut rng, &mut Rng(spec.seed ^ VALUE_STREAM), spec.features)?;
    let (incidents, caused) = incidents(&mut rng, &mut Rng(spec.seed ^ LINK_STREAM), spec.incidents, &shipped)?;
    let deployments = deployments(&mut Rng(spec.seed ^ DEPLOY_STREAM), &shipped, &caused)?;
    let capacity = capacity()?;
    // The backlog draws from its own stream, so its size does not change the other tables.
    let backlog = backlog(
        &mut Rng(spec.seed ^ 0xBAC1_0600_0000_0000),
        &mut Rng(spec.seed ^ VALUE_STREAM ^ 0xBAC1_0600_0000_0000),
        spec.backlog,
    )?;
    Ok(SampleStore { features, incidents, capacity, backlog, deployments })
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Rounds to half a day (a tenth of a week), as people report time spent.
fn report_round(x: f64) -> f64 {
    ((x * 10.0).round() / 10.0).max(0.1)
}

struct FeatureBuilders {
    feature_id: StringBuilder,
    title: StringBuilder,
    team: StringBuilder,
    systems: ListBuilder<StringBuilder>,
    work_type: StringBuilder,
    estimated_weeks: Float64Builder,
    actual_weeks: Float64Builder,
    delay_days: Float64Builder,
    delay_reasons: ListBuilder<StringBuilder>,
    started_at: TimestampMicrosecondBuilder,
    shipped_at: TimestampMicrosecondBuilder,
    dod: Vec<BooleanBuilder>,
    cost_of_delay: Float64Builder,
}

impl FeatureBuilders {
    fn new() -> Self {
        Self {
            feature_id: StringBuilder::new(),
            title: StringBuilder::new(),
            team: StringBuilder::new(),
            systems: ListBuilder::new(StringBuilder::new()),
            work_type: StringBuilder::new(),
            estimated_weeks: Float64Builder::new(),
            actual_weeks: Float64Builder::new(),
            delay_days: Float64Builder::new(),
            delay_reasons: ListBuilder::new(StringBuilder::new()),
            started_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            shipped_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            dod: (0..8).map(|_| BooleanBuilder::new()).collect(),
            cost_of_delay: Float64Builder::new(),
        }
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.feature_id.finish()),
            Arc::new(self.title.finish()),
            Arc::new(self.team.finish()),
            Arc::new(self.systems.finish()),
            Arc::new(self.work_type.finish()),
            Arc::new(self.estimated_weeks.finish()),
            Arc::new(self.actual_weeks.finish()),
            Arc::new(self.delay_days.finish()),
            Arc::new(self.delay_reasons.finish()),
            Arc::new(self.started_at.finish()),
            Arc::new(self.shipped_at.finish()),
        ];
        columns.extend(self.dod.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(self.cost_of_delay.finish()));
        Ok(RecordBatch::try_new(Table::Features.schema(), columns)?)
    }
}

/// The seed of the cost-of-delay values' random stream (xored with the sample's seed).
const VALUE_STREAM: u64 = 0xC0D0_0000_5EED_0001;

/// What a week of delay of a piece of work costs, as product would estimate it: most product
/// work is valued (from $500 to $20,000 a week, rounded to $100), quality work rarely (risk
/// avoided), and a fifth of the product work has no estimate yet.
fn cost_of_delay(rng: &mut Rng, quality: bool) -> Option<f64> {
    let valued = rng.chance(if quality { 0.15 } else { 0.8 });
    let base = *rng.pick(&[500.0, 1000.0, 2000.0, 2000.0, 5000.0, 5000.0, 10000.0, 20000.0]);
    let value = (base * rng.noise(0.3) / 100.0).round() * 100.0;
    valued.then_some(value)
}

/// The seed of the random stream that picks the feature an incident is linked to.
const LINK_STREAM: u64 = 0x11AC_0000_D0D0_0002;

/// How much more often a feature without each definition-of-done item (in `DOD_COLUMNS`' order)
/// causes an incident than one with it: integration tests cut incidents to a third, unit tests
/// and monitoring to half, a feature flag and a runbook a little; acceptance, docs and a
/// performance benchmark change nothing (so `dod_impact` has effects to find and nulls to
/// leave alone).
const DOD_INCIDENT_EFFECT: [f64; 8] = [1.0, 2.0, 3.0, 2.0, 1.5, 1.0, 1.3, 1.0];

/// The shipped features, for the incidents they cause and the deployments that shipped them: per
/// system, (shipped at, the feature's number, its incident weight from the DoD items it lacks,
/// when its work started), in shipping order.
type Shipped = Vec<Vec<(i64, u32, f64, i64)>>;

/// Features, and for each system the shipped features centred on it (for incidents).
fn features(rng: &mut Rng, values: &mut Rng, n: usize) -> Result<(Vec<RecordBatch>, Shipped)> {
    let (start, end) = history();
    let span = (end - start).num_seconds() as f64;
    let mut by_system: Shipped = vec![Vec::new(); SYSTEMS.len()];
    let mut batches = Vec::new();
    let mut b = FeatureBuilders::new();
    for i in 0..n {
        let team_index = rng.below(TEAMS.len());
        let team = &TEAMS[team_index];
        let main = if rng.chance(0.85) { *rng.pick(team.systems) } else { rng.below(SYSTEMS.len()) };
        let mut touched = vec![main];
        let extra = if rng.chance(0.02) {
            2
        } else if rng.chance(0.08) {
            1
        } else {
            0
        };
        while touched.len() < 1 + extra {
            // Work mostly stays within a team's own systems.
            let s = if rng.chance(0.7) { *rng.pick(team.systems) } else { rng.below(SYSTEMS.len()) };
            if !touched.contains(&s) {
                touched.push(s);
            }
        }
        let quality = rng.chance(if team.quality_target > 0.25 { 0.3 } else { 0.16 });
        let estimated = quality_round(*rng.pick(&[0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 6.0, 8.0]) * rng.noise(0.15));

        // Shipped features spread over the history; unshipped ones started recently.
        let shipped = !rng.chance(0.07);
        let t = rng.f64();
        let when = start + Duration::seconds((t * span) as i64);
        // Debt grows over the history: a system reaches its factor at the end.
        let grown = |s: usize| 1.0 + (SYSTEMS[s].factor - 1.0) * (0.8 + 0.2 * t);
        // A feature is as slow as the slowest system it touches.
        let multiplier = touched.iter().map(|&s| grown(s)).fold(1.0, f64::max);
        let actual = report_round(estimated * multiplier * rng.noise(0.2));

        b.feature_id.append_value(format!("FEAT-{:06}", i + 1));
        b.title.append_value(format!("{} {}", rng.pick(VERBS), rng.pick(OBJECTS)));
        if rng.chance(0.03) {
            b.team.append_null();
        } else {
            b.team.append_value(team.name);
        }
        b.systems.append_value(touched.iter().map(|&s| Some(SYSTEMS[s].name)));
        b.work_type.append_value(if quality { "quality" } else { "product" });
        b.estimated_weeks.append_value(estimated);

        let late_weeks = if shipped { actual - estimated } else { 0.0 };
        let delay = if late_weeks > 0.0 { (late_weeks * 5.0 * (0.3 + 0.7 * rng.f64())).round() } else { 0.0 };
        b.delay_days.append_value(delay);
        if delay > 0.0 && !rng.chance(0.12) {
            let mut reasons: Vec<&str> = vec![*rng.pick(SYSTEMS[main].reasons)];
            if rng.chance(0.35) {
                let other = if rng.chance(0.5) {
                    *rng.pick(GENERAL_REASONS)
                } else {
                    let system = *rng.pick(&touched);
                    *rng.pick(SYSTEMS[system].reasons)
                };
                if !reasons.contains(&other) {
                    reasons.push(other);
                }
            }
            b.delay_reasons.append_value(reasons.into_iter().map(Some));
        } else {
            b.delay_reasons.append_value(std::iter::empty::<Option<&str>>());
        }

        if shipped {
            b.actual_weeks.append_value(actual);
            b.shipped_at.append_value(micros(when));
            let started = when - Duration::hours((actual * 7.0 * 24.0) as i64);
            if rng.chance(0.04) {
                b.started_at.append_null();
            } else {
                b.started_at.append_value(micros(started));
            }
            by_system[main].push((micros(when), i as u32, 1.0, micros(started)));
        } else {
            b.actual_weeks.append_null();
            b.shipped_at.append_null();
            b.started_at.append_value(micros(end - Duration::hours(rng.below(60 * 24) as i64)));
        }
        let mut weight = 1.0;
        for (dod, effect) in b.dod.iter_mut().zip(DOD_INCIDENT_EFFECT) {
            if rng.chance(0.08) {
                dod.append_null();
            } else {
                let done = rng.chance(team.dod);
                dod.append_value(done);
                if !done {
                    weight *= effect;
                }
            }
        }
        if shipped && let Some(last) = by_system[main].last_mut() {
            last.2 = weight;
        }
        b.cost_of_delay.append_option(cost_of_delay(values, quality));
        if (i + 1).is_multiple_of(BATCH_ROWS) {
            batches.push(b.finish()?);
        }
    }
    if !n.is_multiple_of(BATCH_ROWS) || n == 0 {
        batches.push(b.finish()?);
    }
    for features in &mut by_system {
        features.sort_unstable_by_key(|f| (f.0, f.1));
    }
    Ok((batches, by_system))
}

/// Estimates people give: round numbers, halves for small work.
fn quality_round(x: f64) -> f64 {
    if x < 1.5 { ((x * 2.0).round() / 2.0).max(0.5) } else { x.round() }
}

struct IncidentBuilders {
    id: StringBuilder,
    system: StringBuilder,
    severity: StringBuilder,
    title: StringBuilder,
    started_at: TimestampMicrosecondBuilder,
    resolved_at: TimestampMicrosecondBuilder,
    users: Int64Builder,
    debt_related: BooleanBuilder,
    feature_id: StringBuilder,
    deployment_id: StringBuilder,
}

impl IncidentBuilders {
    fn new() -> Self {
        Self {
            id: StringBuilder::new(),
            system: StringBuilder::new(),
            severity: StringBuilder::new(),
            title: StringBuilder::new(),
            started_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            resolved_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            users: Int64Builder::new(),
            debt_related: BooleanBuilder::new(),
            feature_id: StringBuilder::new(),
            deployment_id: StringBuilder::new(),
        }
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.system.finish()),
            Arc::new(self.severity.finish()),
            Arc::new(self.title.finish()),
            Arc::new(self.started_at.finish()),
            Arc::new(self.resolved_at.finish()),
            Arc::new(self.users.finish()),
            Arc::new(self.debt_related.finish()),
            Arc::new(self.feature_id.finish()),
            Arc::new(self.deployment_id.finish()),
        ];
        Ok(RecordBatch::try_new(Table::Incidents.schema(), columns)?)
    }
}

/// An incident a feature's deployment caused: (incident number, feature number, system, started,
/// resolved, severity).
type Caused = Vec<(usize, u32, usize, i64, Option<i64>, &'static str)>;

/// Incidents; some are linked to the feature whose change caused them: one of their system's
/// features shipped in the 90 days before, picked in proportion to its DoD weight. Half of those
/// also name the deployment that shipped the feature.
fn incidents(rng: &mut Rng, links: &mut Rng, n: usize, shipped: &Shipped) -> Result<(Vec<RecordBatch>, Caused)> {
    let mut caused = Caused::new();
    let (start, end) = history();
    let span = (end - start).num_seconds() as f64;
    // Systems with more debt have more incidents.
    let weights: Vec<f64> = SYSTEMS.iter().map(|s| 0.5 + (s.factor - 1.0) * 1.5).collect();
    let total: f64 = weights.iter().sum();
    let mut batches = Vec::new();
    let mut b = IncidentBuilders::new();
    for i in 0..n {
        let mut pick = rng.f64() * total;
        let mut s = 0;
        while s + 1 < SYSTEMS.len() && pick >= weights[s] {
            pick -= weights[s];
            s += 1;
        }
        let debt = SYSTEMS[s].factor - 1.0;
        let roll = rng.f64();
        let sev1 = 0.03 + 0.02 * debt;
        let (sev, hours, reach) = if roll < sev1 {
            ("sev1", 3.0, 20_000.0)
        } else if roll < sev1 + 0.15 {
            ("sev2", 8.0, 4_000.0)
        } else if roll < 0.6 {
            ("sev3", 24.0, 300.0)
        } else {
            ("sev4", 60.0, 20.0)
        };
        let t = rng.f64();
        let started = start + Duration::seconds((t * span) as i64);
        b.id.append_value(format!("INC-{:06}", i + 1));
        b.system.append_value(SYSTEMS[s].name);
        b.severity.append_value(sev);
        if rng.chance(0.05) {
            b.title.append_null();
        } else {
            b.title.append_value(format!("{}: {}", SYSTEMS[s].name, rng.pick(SYMPTOMS)));
        }
        b.started_at.append_value(micros(started));
        let duration = Duration::minutes((hours * (1.0 + debt * 0.5) * rng.noise(0.6) * 60.0) as i64 + 5);
        // The newest incidents are the ones still open.
        let resolved =
            if t > 0.985 && rng.chance(0.5) || rng.chance(0.005) { None } else { Some(micros(started + duration)) };
        b.resolved_at.append_option(resolved);
        if rng.chance(0.1) {
            b.users.append_null();
        } else {
            b.users.append_value((reach * rng.noise(0.8)) as i64);
        }
        if rng.chance(0.15) {
            b.debt_related.append_null();
        } else {
            b.debt_related.append_value(rng.chance((0.15 + 0.3 * debt).min(0.9)));
        }
        let caused_by = &shipped[s];
        let cause = if !caused_by.is_empty() && rng.chance(0.3) {
            // The draw the first samples took, kept so that every other column stays as it was.
            rng.below(caused_by.len());
            let now = micros(started);
            let since = micros(started - Duration::days(90));
            let first = caused_by.partition_point(|f| f.0 < since);
            let last = caused_by.partition_point(|f| f.0 <= now);
            let candidates = &caused_by[first..last];
            let total: f64 = candidates.iter().map(|f| f.2).sum();
            let mut pick = links.f64() * total;
            candidates.iter().find(|f| {
                pick -= f.2;
                pick < 0.0
            })
        } else {
            None
        };
        match cause {
            Some(f) => {
                b.feature_id.append_value(format!("FEAT-{:06}", f.1 + 1));
                if links.chance(0.5) {
                    b.deployment_id.append_value(format!("DEP-{:06}", f.1 + 1));
                } else {
                    b.deployment_id.append_null();
                }
                caused.push((i + 1, f.1, s, micros(started), resolved, sev));
            }
            None => {
                b.feature_id.append_null();
                b.deployment_id.append_null();
            }
        }
        if (i + 1).is_multiple_of(BATCH_ROWS) {
            batches.push(b.finish()?);
        }
    }
    if !n.is_multiple_of(BATCH_ROWS) || n == 0 {
        batches.push(b.finish()?);
    }
    Ok((batches, caused))
}

/// The seed of the deployments' random stream.
const DEPLOY_STREAM: u64 = 0xDE91_0000_0000_0003;

/// Deployments: every shipped feature went to production alone when it shipped (`DEP-` and the
/// feature's number), a fifth through staging the day before; a sev1 or sev2 that a deployment
/// caused is rolled back within hours two times in five (`RB-`), and a third of the others get a
/// fix deployment just before they are resolved (`FIX-`); 2% of the production deployments are
/// a failed attempt first (`-a`).
fn deployments(rng: &mut Rng, shipped: &Shipped, caused: &Caused) -> Result<Vec<RecordBatch>> {
    let mut rows: Vec<Deployment> = Vec::new();
    for (system, features) in shipped.iter().enumerate() {
        for &(at, feature, _, started) in features {
            let id = format!("DEP-{:06}", feature + 1);
            let commits: Vec<String> =
                (0..1 + rng.below(4)).map(|_| format!("{:012x}", rng.next_u64() >> 16)).collect();
            let first_commit = (started < at).then(|| started + (rng.f64() * (at - started) as f64 * 0.3) as i64);
            if rng.chance(0.2) {
                rows.push(Deployment {
                    id: format!("{id}-staging"),
                    system,
                    at: at - 86_400_000_000,
                    environment: "staging",
                    status: "success",
                    features: vec![format!("FEAT-{:06}", feature + 1)],
                    commits: commits.clone(),
                    first_commit,
                    ..Deployment::default()
                });
            }
            if rng.chance(0.02) {
                rows.push(Deployment {
                    id: format!("{id}-a"),
                    system,
                    at: at - 1_800_000_000,
                    environment: "production",
                    status: "failure",
                    features: vec![format!("FEAT-{:06}", feature + 1)],
                    commits: commits.clone(),
                    first_commit,
                    ..Deployment::default()
                });
            }
            rows.push(Deployment {
                id,
                system,
                at,
                environment: "production",
                status: "success",
                features: vec![format!("FEAT-{:06}", feature + 1)],
                commits,
                first_commit,
                ..Deployment::default()
            });
        }
    }
    for &(incident, feature, system, started, resolved, severity) in caused {
        let incident = format!("INC-{incident:06}");
        if matches!(severity, "sev1" | "sev2") && rng.chance(0.4) {
            rows.push(Deployment {
                id: format!("RB-{incident}"),
                system,
                at: started + (1_800 + rng.below(7_200) as i64) * 1_000_000,
                environment: "production",
                status: "success",
                rollback_of: Some(format!("DEP-{:06}", feature + 1)),
                fixes: vec![incident],
                ..Deployment::default()
            });
        } else if let Some(resolved) = resolved.filter(|_| rng.chance(1.0 / 3.0)) {
            rows.push(Deployment {
                id: format!("FIX-{incident}"),
                system,
                at: resolved - ((resolved - started) as f64 * 0.1 * rng.f64()) as i64,
                environment: "production",
                status: "success",
                first_commit: Some(started + (resolved - started) / 2),
                fixes: vec![incident],
                ..Deployment::default()
            });
        }
    }
    rows.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    let mut id = StringBuilder::new();
    let mut system = StringBuilder::new();
    let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut environment = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut features = ListBuilder::new(StringBuilder::new());
    let mut commits = ListBuilder::new(StringBuilder::new());
    let mut first_commit = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut caused_ids = ListBuilder::new(StringBuilder::new());
    let mut rollback_of = StringBuilder::new();
    let mut fixes = ListBuilder::new(StringBuilder::new());
    let list = |b: &mut ListBuilder<StringBuilder>, items: &[String]| {
        if items.is_empty() {
            b.append_null();
        } else {
            b.append_value(items.iter().map(Some));
        }
    };
    for d in &rows {
        id.append_value(&d.id);
        system.append_value(SYSTEMS[d.system].name);
        at.append_value(d.at);
        environment.append_value(d.environment);
        status.append_value(d.status);
        list(&mut features, &d.features);
        list(&mut commits, &d.commits);
        first_commit.append_option(d.first_commit);
        caused_ids.append_null();
        rollback_of.append_option(d.rollback_of.as_deref());
        list(&mut fixes, &d.fixes);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(system.finish()),
        Arc::new(at.finish()),
        Arc::new(environment.finish()),
        Arc::new(status.finish()),
        Arc::new(features.finish()),
        Arc::new(commits.finish()),
        Arc::new(first_commit.finish()),
        Arc::new(caused_ids.finish()),
        Arc::new(rollback_of.finish()),
        Arc::new(fixes.finish()),
    ];
    Ok(vec![RecordBatch::try_new(Table::Deployments.schema(), columns)?])
}

/// One deployment of the sample.
#[derive(Default)]
struct Deployment {
    id: String,
    system: usize,
    at: i64,
    environment: &'static str,
    status: &'static str,
    features: Vec<String>,
    commits: Vec<String>,
    first_commit: Option<i64>,
    rollback_of: Option<String>,
    fixes: Vec<String>,
}

/// Eight quarters of capacity per team and for the whole organisation.
fn capacity() -> Result<Vec<RecordBatch>> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let days = |d: NaiveDate| (d - epoch).num_days() as i32;
    let mut period_start = Date32Builder::new();
    let mut period_end = Date32Builder::new();
    let mut team = StringBuilder::new();
    let mut budget = Float64Builder::new();
    let mut engineer_weeks = Float64Builder::new();
    let mut target = Float64Builder::new();
    for q in 0..8 {
        let from = NaiveDate::from_ymd_opt(2025 + q / 4, (q % 4) as u32 * 3 + 1, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2025 + (q + 1) / 4, ((q + 1) % 4) as u32 * 3 + 1, 1).unwrap();
        let weeks = (to - from).num_days() as f64 / 7.0;
        let (mut org_budget, mut org_weeks) = (0.0, 0.0);
        for (i, t) in TEAMS.iter().enumerate() {
            // Teams grow a little each quarter; an engineer-week costs about $4,000.
            let engineers = t.engineers + (q as f64 * 0.25 * (i % 3) as f64).floor();
            let eng_weeks = (engineers * weeks).round();
            let cost = (eng_weeks * (3_800.0 + 100.0 * i as f64) / 1000.0).round() * 1000.0;
            org_budget += cost;
            org_weeks += eng_weeks;
            period_start.append_value(days(from));
            period_end.append_value(days(to));
            team.append_value(t.name);
            budget.append_value(cost);
            // One team stopped reporting engineer-weeks for a quarter.
            if t.name == "growth" && q == 3 {
                engineer_weeks.append_null();
            } else {
                engineer_weeks.append_value(eng_weeks);
            }
            target.append_value(t.quality_target);
        }
        period_start.append_value(days(from));
        period_end.append_value(days(to));
        team.append_null();
        // The organisation's budget also carries management and tooling.
        budget.append_value((org_budget * 1.08 / 1000.0).round() * 1000.0);
        engineer_weeks.append_value(org_weeks);
        target.append_value(0.2);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(period_start.finish()),
        Arc::new(period_end.finish()),
        Arc::new(team.finish()),
        Arc::new(budget.finish()),
        Arc::new(engineer_weeks.finish()),
        Arc::new(target.finish()),
    ];
    Ok(vec![RecordBatch::try_new(Table::Capacity.schema(), columns)?])
}

/// The planned work of each team after the history ends: items on one to three of the team's
/// systems, prioritised per team (a few not yet), some with a planned start, a sixth of them
/// quality work.
fn backlog(rng: &mut Rng, values: &mut Rng, n: usize) -> Result<Vec<RecordBatch>> {
    const WEEKS: &[f64] = &[0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 3.0, 4.0, 6.0, 8.0];
    let (_, end) = history();
    let first_day = end.date_naive() + Duration::days(1);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    let mut item_id = StringBuilder::new();
    let mut title = StringBuilder::new();
    let mut team = StringBuilder::new();
    let mut systems = ListBuilder::new(StringBuilder::new());
    let mut estimated = Float64Builder::new();
    let mut priority = Int64Builder::new();
    let mut planned_start = Date32Builder::new();
    let mut work_type = StringBuilder::new();
    let mut value = Float64Builder::new();
    let mut next_priority = vec![1i64; TEAMS.len()];
    for i in 0..n {
        let t = rng.below(TEAMS.len());
        let home = &TEAMS[t];
        item_id.append_value(format!("PLAN-{:03}", i + 1));
        let quality = rng.chance(1.0 / 6.0);
        let verb = if quality { "Pay down" } else { rng.pick(VERBS) };
        title.append_value(format!("{verb} {}", rng.pick(OBJECTS)));
        // A few items are not assigned to a team yet.
        if rng.chance(0.04) {
            team.append_null();
        } else {
            team.append_value(home.name);
        }
        let mut touched = vec![SYSTEMS[*rng.pick(home.systems)].name];
        let extra = if rng.chance(0.3) { 1 + usize::from(rng.chance(0.3)) } else { 0 };
        for _ in 0..extra {
            let s = SYSTEMS[*rng.pick(home.systems)].name;
            if !touched.contains(&s) {
                touched.push(s);
            }
        }
        systems.append_value(touched.into_iter().map(Some));
        estimated.append_value(*rng.pick(WEEKS));
        if rng.chance(0.1) {
            priority.append_null();
        } else {
            priority.append_value(next_priority[t]);
            next_priority[t] += 1;
        }
        if rng.chance(0.25) {
            let day = first_day + Duration::days(7 * rng.below(10) as i64);
            planned_start.append_value((day - epoch).num_days() as i32);
        } else {
            planned_start.append_null();
        }
        work_type.append_value(if quality { "quality" } else { "product" });
        value.append_option(cost_of_delay(values, quality));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(item_id.finish()),
        Arc::new(title.finish()),
        Arc::new(team.finish()),
        Arc::new(systems.finish()),
        Arc::new(estimated.finish()),
        Arc::new(priority.finish()),
        Arc::new(planned_start.finish()),
        Arc::new(work_type.finish()),
        Arc::new(value.finish()),
    ];
    Ok(vec![RecordBatch::try_new(Table::Backlog.schema(), columns)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        let spec = SampleSpec { features: 300, incidents: 200, backlog: 40, seed: 7 };
        let a = generate(spec).unwrap();
        let b = generate(spec).unwrap();
        assert_eq!(a.features, b.features);
        assert_eq!(a.incidents, b.incidents);
        assert_eq!(a.backlog, b.backlog);
        let c = generate(SampleSpec { seed: 8, ..spec }).unwrap();
        assert_ne!(a.features, c.features);
    }

    #[test]
    fn sizes_are_as_asked_across_batches() {
        let spec = SampleSpec { features: BATCH_ROWS + 10, incidents: 5, backlog: 7, seed: 1 };
        let s = generate(spec).unwrap();
        assert_eq!(s.features.iter().map(|b| b.num_rows()).sum::<usize>(), BATCH_ROWS + 10);
        assert_eq!(s.incidents.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
        assert_eq!(s.capacity[0].num_rows(), 8 * (TEAMS.len() + 1));
        assert_eq!(s.backlog[0].num_rows(), 7);
    }

    #[test]
    fn there_are_at_least_twelve_systems_and_five_teams() {
        assert!(SYSTEMS.len() >= 12 && TEAMS.len() >= 5);
    }
}
