//! Exact float sums: `sum` and `avg` over floats give the correctly rounded result of the exact
//! sum, whatever the order of the rows, the files, the partitions or the number of cores.
//!
//! DataFusion adds floats in scan and partition order, so the same rows in other files, with
//! another `target_partitions`, or on the next run of a multi-file scan gave other last digits.
//! Here every group keeps its sum as exact partials (Shewchuk's non-overlapping expansion, as
//! Python's `math.fsum`): adding a value or merging another partition's partials is exact, and
//! the one rounding happens at the end. A batch whose values are close enough in magnitude (the
//! usual case: weeks, days, money) is first summed per group as 128-bit integers in units of its
//! lowest set bit, which is exact too and a few integer operations a value; the total joins the
//! partials as the two or three floats it splits into. Other input types (integers, decimals)
//! and `DISTINCT` go to DataFusion's own functions.
//!
//! Non-finite values follow IEEE 754 and PostgreSQL: any NaN gives NaN, +inf and -inf together
//! give NaN, otherwise an infinity wins. A sum of finite values whose exact value is beyond the
//! float range is ±inf. Partial sums beyond 2^1023 (a thousand of the largest floats added
//! together) overflow to ±inf and are the one case where order could still matter.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Float64Builder, ListArray, ListBuilder, UInt64Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, ReversedUDAF,
    SetMonotonicity, Signature,
};

/// The exact sum of a set of floats, as non-overlapping partials in increasing magnitude, plus
/// the sum of the non-finite values and the count of values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactSum {
    partials: Vec<f64>,
    /// The IEEE sum of the infinities and NaNs seen (0 when none).
    special: f64,
    count: u64,
}

impl ExactSum {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one value, exactly.
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        self.add_partial(x);
    }

    fn add_partial(&mut self, mut x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            if !hi.is_finite() {
                // Beyond the float range: the sum is that infinity.
                self.special += hi;
                self.partials.clear();
                return;
            }
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        self.partials.push(x);
    }

    /// Takes one value out again, exactly (a window frame sliding on).
    pub fn remove(&mut self, x: f64) {
        self.count = self.count.saturating_sub(1);
        // An infinity cannot be taken back out of an IEEE sum: a sliding frame that saw one
        // keeps it, as PostgreSQL's float sums do.
        if x.is_finite() {
            self.add_partial(-x);
        }
    }

    /// Adds another sum (another partition's), exactly.
    pub fn merge(&mut self, other: &ExactSum) {
        self.count += other.count;
        self.special += other.special;
        for &p in &other.partials {
            self.add_partial(p);
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The exact sum rounded once to the nearest float (ties to even); `None` when no value was
    /// added.
    pub fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| self.rounded())
    }

    /// The mean: the correctly rounded sum divided by the count.
    pub fn mean(&self) -> Option<f64> {
        self.value().map(|s| s / self.count as f64)
    }

    fn rounded(&self) -> f64 {
        if self.special != 0.0 {
            return self.special;
        }
        // Python's math.fsum: add the partials from the largest down until the sum is inexact,
        // then correct a tie that the partials below would break.
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
        hi
    }

    fn from_state(partials: Option<ArrayRef>, special: f64, count: u64) -> Self {
        let partials = partials
            .map(|a| a.as_primitive::<Float64Type>().iter().flatten().collect::<Vec<f64>>())
            .unwrap_or_default();
        Self { partials, special, count }
    }
}

/// A finite non-zero float as `sign * mant * 2^exp` with `mant` odd: its lowest set bit is at
/// `exp`, and `|x| < 2^(exp + bit length of mant)`.
fn split(x: f64) -> (i128, i32, i32) {
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    let (mant, exp) = if biased == 0 { (frac, -1074) } else { (frac | (1 << 52), biased - 1075) };
    let tz = mant.trailing_zeros();
    let mant = mant >> tz;
    let signed = if x < 0.0 { -(mant as i128) } else { mant as i128 };
    (signed, exp + tz as i32, exp + tz as i32 + (64 - mant.leading_zeros()) as i32)
}

/// The rows of a batch whose values can be summed exactly as 128-bit integers in units of
/// 2^`low` (the lowest set bit among them): every value finite, and the widest value's bits
/// above `low`, plus the bits the count of values can carry, within 126. Real measures (weeks,
/// days, hours, money) share a few dozen bits at most, so this is the common case: a few integer
/// operations a value instead of updating the partials. `None` when the batch needs the partials
/// (an infinity or NaN, or values too far apart in magnitude).
fn integer_scale(values: impl Iterator<Item = f64>) -> Option<i32> {
    let (mut low, mut high, mut n) = (i32::MAX, i32::MIN, 0u32);
    for x in values {
        if !x.is_finite() {
            return None;
        }
        n += 1;
        if x != 0.0 {
            let (_, lo, hi) = split(x);
            low = low.min(lo);
            high = high.max(hi);
        }
    }
    if low == i32::MAX {
        return Some(0);
    }
    let carry = 32 - n.leading_zeros() as i32;
    // The parts a total is turned back into must be normal floats: 2^low at least 2^-1022, and
    // the total (under 2^126 units) under 2^1024.
    (high - low + carry <= 126 && (-1022..=896).contains(&low)).then_some(low)
}

/// `x` in units of 2^`low` (exact for the values `integer_scale` admits `low` for); 0 for zero.
fn units(x: f64, low: i32) -> i128 {
    if x == 0.0 {
        return 0;
    }
    let (mant, exp, _) = split(x);
    mant << (exp - low)
}

impl ExactSum {
    /// Adds an integer total in units of 2^`low` (see `integer_scale`), exactly: as the two or
    /// three floats it rounds to and leaves over.
    fn add_scaled(&mut self, mut total: i128, low: i32) {
        let unit = f64::from_bits(((low + 1023) as u64) << 52);
        while total != 0 {
            let part = total as f64;
            total -= part as i128;
            self.add_partial(part * unit);
        }
    }
}

/// What the function gives back from a sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    Sum,
    Mean,
    /// The partials themselves (`exact_partials`).
    Partials,
}

/// Which DataFusion function a wrapper stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sum,
    Mean,
    Percentile,
    Median,
}

impl Kind {
    /// What a sum gives back, for the summing kinds.
    fn output(self) -> Option<Output> {
        match self {
            Kind::Sum => Some(Output::Sum),
            Kind::Mean => Some(Output::Mean),
            Kind::Percentile | Kind::Median => None,
        }
    }
}

/// One of DataFusion's `sum`, `avg`, `percentile_cont` or `median`, with the exact accumulator
/// of this module for float inputs; everything else is the wrapped function's.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Exact {
    inner: Arc<AggregateUDF>,
    kind: Kind,
}

/// True for the inputs this module sums (after DataFusion's coercion, which widens to Float64).
fn is_float(t: &DataType) -> bool {
    matches!(t, DataType::Float64 | DataType::Float32 | DataType::Float16)
}

fn exact_args(args: &AccumulatorArgs) -> bool {
    !args.is_distinct && args.expr_fields.first().is_some_and(|f| is_float(f.data_type()))
}

impl Exact {
    /// This module's accumulator for the arguments, `None` when DataFusion's serves them.
    fn exact_accumulator(&self, args: &AccumulatorArgs) -> Result<Option<Box<dyn Accumulator>>> {
        if !exact_args(args) {
            return Ok(None);
        }
        Ok(Some(match self.kind.output() {
            Some(output) => Box::new(ExactAccumulator { sum: ExactSum::new(), output }),
            None => {
                let (p, descending) = if self.kind == Kind::Median { (0.5, false) } else { percentile_of(args)? };
                Box::new(PercentileAccumulator { values: Vec::new(), p, descending })
            }
        }))
    }
}

impl AggregateUDFImpl for Exact {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match self.exact_accumulator(&args)? {
            Some(acc) => Ok(acc),
            None => self.inner.accumulator(args),
        }
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // A percentile's state is DataFusion's (the list of values, Float64 after coercion).
        let float = !args.is_distinct && args.input_fields.first().is_some_and(|f| is_float(f.data_type()));
        if float && self.kind.output().is_some() { Ok(state_fields(args.name)) } else { self.inner.state_fields(args) }
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        match (exact_args(&args), self.kind.output()) {
            (true, Some(_)) => true,
            // The exact percentile has no groups accumulator: DataFusion adapts the plain one.
            (true, None) => false,
            (false, _) => self.inner.groups_accumulator_supported(args),
        }
    }
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        match (exact_args(&args), self.kind.output()) {
            (true, Some(output)) => Ok(Box::new(ExactGroups::new(output))),
            _ => self.inner.create_groups_accumulator(args),
        }
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // A sum slides by exact retraction; a percentile's frames are DataFusion's.
        match self.exact_accumulator(&args)? {
            Some(acc) if self.kind.output().is_some() => Ok(acc),
            _ => self.inner.create_sliding_accumulator(args),
        }
    }
    fn simplify(&self) -> Option<datafusion::logical_expr::function::AggregateFunctionSimplification> {
        self.inner.inner().simplify()
    }
    fn supports_within_group_clause(&self) -> bool {
        self.inner.inner().supports_within_group_clause()
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.inner().order_sensitivity()
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        match (self.kind.output(), self.inner.reverse_udf()) {
            // A sum is its own reverse: it does not depend on order.
            (Some(_), ReversedUDAF::NotSupported) => ReversedUDAF::NotSupported,
            (Some(_), _) => ReversedUDAF::Identical,
            (None, reverse) => reverse,
        }
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.inner().set_monotonicity(data_type)
    }
}

fn state_fields(name: &str) -> Vec<FieldRef> {
    vec![
        Arc::new(Field::new(
            format!("{name}[partials]"),
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
            true,
        )),
        Arc::new(Field::new(format!("{name}[special]"), DataType::Float64, true)),
        Arc::new(Field::new(format!("{name}[count]"), DataType::UInt64, true)),
    ]
}

/// The input column as Float64.
fn floats(values: &[ArrayRef]) -> Result<ArrayRef> {
    let v = &values[0];
    Ok(if v.data_type() == &DataType::Float64 { Arc::clone(v) } else { cast(v, &DataType::Float64)? })
}

fn output_value(sum: &ExactSum, output: Output) -> Option<f64> {
    match output {
        Output::Sum | Output::Partials => sum.value(),
        Output::Mean => sum.mean(),
    }
}

#[derive(Debug)]
struct ExactAccumulator {
    sum: ExactSum,
    output: Output,
}

impl Accumulator for ExactAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = floats(values)?;
        let v = v.as_primitive::<Float64Type>();
        // Batches go through 128-bit integers when their values allow it (`integer_scale`),
        // in pieces small enough for the carry bits.
        for start in (0..v.len()).step_by(INTEGER_BATCH) {
            let piece = v.slice(start, INTEGER_BATCH.min(v.len() - start));
            match integer_scale(piece.iter().flatten()) {
                Some(low) => {
                    let mut total = 0i128;
                    for x in piece.iter().flatten() {
                        self.sum.count += 1;
                        total += units(x, low);
                    }
                    self.sum.add_scaled(total, low);
                }
                None => piece.iter().flatten().for_each(|x| self.sum.add(x)),
            }
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = floats(values)?;
        for x in v.as_primitive::<Float64Type>().iter().flatten() {
            self.sum.remove(x);
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(output_value(&self.sum, self.output)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sum.partials.capacity() * 8
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let partials: Vec<ScalarValue> = self.sum.partials.iter().map(|p| ScalarValue::Float64(Some(*p))).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&partials, &DataType::Float64)),
            ScalarValue::Float64(Some(self.sum.special)),
            ScalarValue::UInt64(Some(self.sum.count)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for other in sums_of_states(states) {
            self.sum.merge(&other);
        }
        Ok(())
    }
}

/// The sums of a state batch (one per row).
fn sums_of_states(states: &[ArrayRef]) -> impl Iterator<Item = ExactSum> + '_ {
    let partials: &ListArray = states[0].as_list::<i32>();
    let special = states[1].as_primitive::<Float64Type>();
    let count = states[2].as_primitive::<UInt64Type>();
    (0..partials.len()).map(move |i| {
        let list = partials.is_valid(i).then(|| partials.value(i));
        let s = if special.is_valid(i) { special.value(i) } else { 0.0 };
        let c = if count.is_valid(i) { count.value(i) } else { 0 };
        ExactSum::from_state(list, s, c)
    })
}

/// The state columns of some sums: partials, special, count.
fn state_arrays(sums: &[ExactSum]) -> Vec<ArrayRef> {
    let mut partials = ListBuilder::new(Float64Builder::new());
    for s in sums {
        partials.values().append_slice(&s.partials);
        partials.append(true);
    }
    let special: Float64Array = sums.iter().map(|s| Some(s.special)).collect();
    let count: UInt64Array = sums.iter().map(|s| Some(s.count)).collect();
    vec![Arc::new(partials.finish()), Arc::new(special), Arc::new(count)]
}

/// Values summed as integers at a time (`integer_scale`): 2^13, so 13 bits of carry.
const INTEGER_BATCH: usize = 8192;

/// One exact sum per group.
#[derive(Debug)]
struct ExactGroups {
    sums: Vec<ExactSum>,
    output: Output,
    /// Per group, its integer total of the rows being added (`add_as_integers`), and the groups
    /// that have one.
    totals: Vec<i128>,
    touched: Vec<usize>,
    seen: Vec<bool>,
}

impl ExactGroups {
    fn new(output: Output) -> Self {
        ExactGroups { sums: Vec::new(), output, totals: Vec::new(), touched: Vec::new(), seen: Vec::new() }
    }

    /// Adds rows `rows` of a batch through per-group integer totals when their values allow it
    /// (`integer_scale`); false, having added nothing, when they do not.
    fn add_as_integers(
        &mut self,
        v: &Float64Array,
        group_indices: &[usize],
        rows: std::ops::Range<usize>,
        keep: &impl Fn(usize) -> bool,
    ) -> bool {
        let Some(low) = integer_scale(rows.clone().filter(|&r| keep(r)).map(|r| v.value(r))) else { return false };
        let groups = self.sums.len();
        self.totals.resize(groups, 0);
        self.seen.resize(groups, false);
        for row in rows {
            if !keep(row) {
                continue;
            }
            let group = group_indices[row];
            self.sums[group].count += 1;
            let x = v.value(row);
            if x == 0.0 {
                continue;
            }
            if !self.seen[group] {
                self.seen[group] = true;
                self.touched.push(group);
            }
            self.totals[group] += units(x, low);
        }
        for group in self.touched.drain(..) {
            self.seen[group] = false;
            let total = std::mem::take(&mut self.totals[group]);
            self.sums[group].add_scaled(total, low);
        }
        true
    }
}

impl GroupsAccumulator for ExactGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.sums.resize_with(total_num_groups, ExactSum::new);
        let v = floats(values)?;
        let v = v.as_primitive::<Float64Type>();
        let keep = |row: usize| opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row)) && !v.is_null(row);
        for start in (0..v.len()).step_by(INTEGER_BATCH) {
            let rows = start..(start + INTEGER_BATCH).min(v.len());
            if self.add_as_integers(v, group_indices, rows.clone(), &keep) {
                continue;
            }
            for row in rows {
                if keep(row) {
                    self.sums[group_indices[row]].add(v.value(row));
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let sums = emit_to.take_needed(&mut self.sums);
        if self.output == Output::Partials {
            return Ok(partials_array(&sums));
        }
        let out: Float64Array = sums.iter().map(|s| output_value(s, self.output)).collect();
        Ok(Arc::new(out))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(state_arrays(&emit_to.take_needed(&mut self.sums)))
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.sums.resize_with(total_num_groups, ExactSum::new);
        for (other, &group) in sums_of_states(values).zip(group_indices) {
            self.sums[group].merge(&other);
        }
        Ok(())
    }

    /// Each input row as the state of a group of its own (when the partial aggregation skips
    /// grouping because almost every row is a group).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let v = floats(values)?;
        let v = v.as_primitive::<Float64Type>();
        let mut sums = Vec::with_capacity(v.len());
        for row in 0..v.len() {
            let mut sum = ExactSum::new();
            if !v.is_null(row) && opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row)) {
                sum.add(v.value(row));
            }
            sums.push(sum);
        }
        Ok(state_arrays(&sums))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.totals.capacity() * 16
            + self.seen.capacity()
            + self.touched.capacity() * 8
            + self.sums.capacity() * std::mem::size_of::<ExactSum>()
            + self.sums.iter().map(|s| s.partials.capacity() * 8).sum::<usize>()
    }
}

/// The continuous percentile `p` of some values, as PostgreSQL computes it: the values at
/// positions floor(p(n-1)) and ceil(p(n-1)) of the sorted values, interpolated `lo + (hi - lo) *
/// f` with the fraction f = p(n-1) - floor(p(n-1)) unrounded. (DataFusion 55 rounds f to 1e-6.)
/// `None` for no values. NaN sorts above every number, as in PostgreSQL.
pub fn percentile_cont(values: &mut [f64], p: f64, descending: bool) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    // Sorted in the order asked for (PostgreSQL interpolates over that order, so a descending
    // p is not 1 - p in floating point).
    if descending {
        values.sort_unstable_by(|a, b| b.total_cmp(a));
    } else {
        values.sort_unstable_by(|a, b| a.total_cmp(b));
    }
    let position = p * (values.len() - 1) as f64;
    let (first, second) = (position.floor(), position.ceil());
    let lo = values[first as usize];
    if first == second {
        return Some(lo);
    }
    let hi = values[second as usize];
    Some(lo + (hi - lo) * (position - first))
}

/// The percentile asked for (the literal second argument of `percentile_cont`) and whether
/// the order is descending.
fn percentile_of(args: &AccumulatorArgs) -> Result<(f64, bool)> {
    let descending = args.order_bys.first().is_some_and(|s| s.options.descending);
    // A literal evaluates to itself over an empty batch (as DataFusion reads it).
    let empty =
        datafusion::arrow::array::RecordBatch::new_empty(Arc::new(datafusion::arrow::datatypes::Schema::empty()));
    let value = match args.exprs.get(1).map(|e| e.evaluate(&empty)).transpose()? {
        Some(datafusion::logical_expr::ColumnarValue::Scalar(v)) => Some(v),
        _ => None,
    };
    let p = match value {
        Some(ScalarValue::Float64(Some(p))) => p,
        Some(ScalarValue::Float32(Some(p))) => f64::from(p),
        Some(v) if v.data_type().is_integer() => v.to_string().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    };
    if !(0.0..=1.0).contains(&p) {
        return datafusion::common::plan_err!("percentile_cont: the percentile must be a number from 0 to 1");
    }
    Ok((p, descending))
}

#[derive(Debug)]
struct PercentileAccumulator {
    values: Vec<f64>,
    p: f64,
    descending: bool,
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = floats(values)?;
        self.values.extend(v.as_primitive::<Float64Type>().iter().flatten());
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(percentile_cont(&mut self.values, self.p, self.descending)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.values.iter().map(|v| ScalarValue::Float64(Some(*v))).collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::Float64))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                let list = cast(&lists.value(i), &DataType::Float64)?;
                self.values.extend(list.as_primitive::<Float64Type>().iter().flatten());
            }
        }
        Ok(())
    }
}

/// `sum` and `avg` with exact float accumulation, `percentile_cont` and `median` with exact
/// interpolation, to register over DataFusion's.
/// `exact_partials(x)`: a group's exact float sum as its partials (a list of floats whose exact
/// sum is the exact sum of the values; an infinity or NaN seen is one more element), NULL when
/// the group has no value. `sum_partials(list)` adds such lists exactly and rounds once, so a
/// query that sums per day first and then over days (the capacity views) gives the correctly
/// rounded sum of the rows themselves, not a sum of rounded daily sums.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Partials {
    signature: Signature,
    /// `exact_partials` (values in, partials out) or `sum_partials` (partials in, the sum out).
    collect: bool,
}

fn float_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

impl AggregateUDFImpl for Partials {
    fn name(&self) -> &str {
        if self.collect { "exact_partials" } else { "sum_partials" }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(if self.collect { float_list() } else { DataType::Float64 })
    }
    fn is_nullable(&self) -> bool {
        true
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(PartialsAccumulator { sum: ExactSum::new(), collect: self.collect }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        self.collect
    }
    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(ExactGroups::new(Output::Partials)))
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// The partials of a sum as `exact_partials` gives them: NULL for no value.
fn partials_of(sum: &ExactSum) -> Option<Vec<f64>> {
    (sum.count > 0).then(|| {
        let mut out = sum.partials.clone();
        if sum.special != 0.0 {
            out.push(sum.special);
        }
        out
    })
}

fn partials_array(sums: &[ExactSum]) -> ArrayRef {
    let mut out = ListBuilder::new(Float64Builder::new());
    for s in sums {
        match partials_of(s) {
            Some(p) => {
                out.values().append_slice(&p);
                out.append(true);
            }
            None => out.append(false),
        }
    }
    Arc::new(out.finish())
}

#[derive(Debug)]
struct PartialsAccumulator {
    sum: ExactSum,
    collect: bool,
}

impl Accumulator for PartialsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if self.collect {
            let v = floats(values)?;
            for x in v.as_primitive::<Float64Type>().iter().flatten() {
                self.sum.add(x);
            }
            return Ok(());
        }
        // Lists of partials: each non-null list counts as one value, its elements added exactly.
        let lists = values[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_null(i) {
                continue;
            }
            self.sum.count += 1;
            let list = lists.value(i);
            let elements = cast(&list, &DataType::Float64)?;
            for x in elements.as_primitive::<Float64Type>().iter().flatten() {
                self.sum.add_partial(x);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if !self.collect {
            return Ok(ScalarValue::Float64(self.sum.value()));
        }
        Ok(ScalarValue::List(Arc::new(partials_array(std::slice::from_ref(&self.sum)).as_list::<i32>().clone())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.sum.partials.capacity() * 8
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        ExactAccumulator { sum: self.sum.clone(), output: Output::Sum }.state()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for other in sums_of_states(states) {
            self.sum.merge(&other);
        }
        Ok(())
    }
}

pub fn functions() -> Vec<AggregateUDF> {
    use datafusion::functions_aggregate::average::avg_udaf;
    use datafusion::functions_aggregate::median::median_udaf;
    use datafusion::functions_aggregate::percentile_cont::percentile_cont_udaf;
    use datafusion::functions_aggregate::sum::sum_udaf;
    vec![
        AggregateUDF::new_from_impl(Exact { inner: sum_udaf(), kind: Kind::Sum }),
        AggregateUDF::new_from_impl(Exact { inner: avg_udaf(), kind: Kind::Mean }),
        AggregateUDF::new_from_impl(Exact { inner: percentile_cont_udaf(), kind: Kind::Percentile }),
        AggregateUDF::new_from_impl(Exact { inner: median_udaf(), kind: Kind::Median }),
        AggregateUDF::new_from_impl(Partials {
            signature: Signature::exact(vec![DataType::Float64], datafusion::logical_expr::Volatility::Immutable),
            collect: true,
        }),
        AggregateUDF::new_from_impl(Partials {
            signature: Signature::exact(vec![float_list()], datafusion::logical_expr::Volatility::Immutable),
            collect: false,
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact sum of floats as a rational p / 2^1074 (every float is an integer multiple of
    /// 2^-1074), rounded to the nearest float, ties to even: the reference the accumulator must
    /// equal bit for bit.
    fn reference(values: &[f64]) -> f64 {
        // i128 holds 2^1074-scaled sums only for small exponents; use a big integer of u64 limbs.
        let mut acc = BigInt::zero();
        for &v in values {
            acc.add_float(v);
        }
        acc.to_f64()
    }

    /// Just enough of a signed big integer (sign + magnitude limbs, little-endian).
    #[derive(Clone)]
    struct BigInt {
        neg: bool,
        mag: Vec<u64>,
    }

    impl BigInt {
        fn zero() -> Self {
            Self { neg: false, mag: vec![0; 40] }
        }
        fn add_float(&mut self, v: f64) {
            if v == 0.0 {
                return;
            }
            let bits = v.to_bits();
            let exp = ((bits >> 52) & 0x7ff) as i64;
            let frac = bits & ((1 << 52) - 1);
            let (m, shift) = if exp == 0 { (frac, 0) } else { (frac | (1 << 52), exp - 1) };
            // v = m * 2^(shift - 1074)
            let mut term = vec![0u64; 40];
            let (limb, bit) = ((shift / 64) as usize, (shift % 64) as u32);
            term[limb] |= m << bit;
            if bit > 11 {
                term[limb + 1] |= m >> (64 - bit);
            }
            self.add_signed(v < 0.0, &term);
        }
        fn cmp_mag(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
            for i in (0..a.len()).rev() {
                match a[i].cmp(&b[i]) {
                    std::cmp::Ordering::Equal => continue,
                    o => return o,
                }
            }
            std::cmp::Ordering::Equal
        }
        fn add_signed(&mut self, neg: bool, term: &[u64]) {
            if neg == self.neg {
                let mut carry = 0u128;
                for (limb, t) in self.mag.iter_mut().zip(term) {
                    let s = *limb as u128 + *t as u128 + carry;
                    *limb = s as u64;
                    carry = s >> 64;
                }
            } else {
                let (big, small, sign) = if Self::cmp_mag(&self.mag, term).is_ge() {
                    (self.mag.clone(), term.to_vec(), self.neg)
                } else {
                    (term.to_vec(), self.mag.clone(), neg)
                };
                let mut borrow = 0i128;
                for i in 0..self.mag.len() {
                    let d = big[i] as i128 - small[i] as i128 - borrow;
                    self.mag[i] = d.rem_euclid(1i128 << 64) as u64;
                    borrow = if d < 0 { 1 } else { 0 };
                }
                self.neg = sign;
            }
        }
        fn to_f64(&self) -> f64 {
            // The highest set bit, then 53 bits, round half to even on what lies below.
            let top = (0..self.mag.len() * 64).rev().find(|&b| self.mag[b / 64] >> (b % 64) & 1 == 1);
            let Some(top) = top else { return 0.0 };
            let bit = |b: usize| self.mag[b / 64] >> (b % 64) & 1;
            let (mantissa, exp2) = if top < 53 {
                // Subnormal range or small: exact.
                (self.mag[0], 0i64)
            } else {
                let low = top - 52;
                let mut m = 0u64;
                for b in (low..=top).rev() {
                    m = m << 1 | bit(b);
                }
                let half = bit(low - 1) == 1;
                let sticky = (0..low - 1).any(|b| bit(b) == 1);
                if half && (sticky || m & 1 == 1) {
                    m += 1;
                }
                (m, low as i64)
            };
            // value = mantissa * 2^(exp2 - 1074) in two steps: a negative power as 2^(k + 100)
            // then 2^-100, so that a subnormal result is rounded once; a positive one halved, so
            // that neither factor overflows before the product (values near the top of the range).
            let k = exp2 - 1074;
            let v = if k >= 0 {
                (mantissa as f64) * pow2(k / 2) * pow2(k - k / 2)
            } else {
                (mantissa as f64) * pow2(k + 100) * pow2(-100)
            };
            if self.neg { -v } else { v }
        }
    }

    /// 2^k for a normal exponent; inf above the range.
    fn pow2(k: i64) -> f64 {
        if k > 1023 { f64::INFINITY } else { f64::from_bits(((k + 1023) as u64) << 52) }
    }

    fn exact(values: &[f64]) -> f64 {
        let mut s = ExactSum::new();
        for &v in values {
            s.add(v);
        }
        s.value().unwrap()
    }

    /// percentile_cont against rational interpolation: with the fraction f exact, lo + (hi-lo)f
    /// computed in f64 is within half an ulp of each step; these cases are exact.
    #[test]
    fn percentiles_interpolate_without_rounding_the_fraction() {
        let p = |v: &[f64], q: f64| percentile_cont(&mut v.to_vec(), q, false);
        assert_eq!(p(&[], 0.5), None);
        assert_eq!(p(&[7.0], 0.9), Some(7.0), "one row");
        assert_eq!(p(&[3.0, 1.0, 2.0], 0.0), Some(1.0));
        assert_eq!(p(&[3.0, 1.0, 2.0], 1.0), Some(3.0));
        assert_eq!(p(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
        assert_eq!(p(&[2.0, 2.0, 2.0, 5.0], 0.5), Some(2.0), "ties");
        // 0.9 of 7 values: position 5.4 (in f64: 5.4 + 4.4e-16), between 6.0 and 7.0.
        let position: f64 = 0.9 * 6.0;
        assert_eq!(p(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 0.9), Some(6.0 + (position - 5.0)));
        // A fraction DataFusion 55 rounds to 1e-6: 0.9 * (n - 1) with n = 1235 leaves f = 0.6.
        let values: Vec<f64> = (0..1235).map(|i| i as f64 * 0.001).collect();
        let position = 0.9 * 1234.0_f64;
        let lo = values[position.floor() as usize];
        let hi = values[position.ceil() as usize];
        assert_eq!(p(&values, 0.9), Some(lo + (hi - lo) * (position - position.floor())));
        assert!(p(&[1.0, f64::NAN, 2.0], 1.0).unwrap().is_nan(), "NaN sorts last");
        // Descending: interpolated over the descending order, as PostgreSQL does.
        let position = 0.9 * 1234.0_f64;
        let mut desc = values.clone();
        desc.reverse();
        let (lo, hi) = (desc[position.floor() as usize], desc[position.ceil() as usize]);
        let expected = lo + (hi - lo) * (position - position.floor());
        assert_eq!(percentile_cont(&mut values.clone(), 0.9, true), Some(expected));
    }

    #[test]
    fn the_reference_rounds_as_ieee_addition_does() {
        assert_eq!(reference(&[0.1, 0.2]), 0.1 + 0.2);
        assert_eq!(reference(&[1e16, 1.0, -1e16]), 1.0);
        assert_eq!(reference(&[-2.5, 0.25]), -2.25);
        assert_eq!(reference(&[f64::MAX, -f64::MAX, 1.5]), 1.5);
    }

    #[test]
    fn cancellation_that_naive_sums_lose() {
        assert_eq!(exact(&[1e16, 1.0, -1e16]), 1.0);
        assert_eq!(exact(&[1e100, 1.0, -1e100, 1e-100]), 1.0 + 1e-100);
        assert_eq!(exact(&[0.1, 0.2, 0.3, -0.6]), reference(&[0.1, 0.2, 0.3, -0.6]));
        let naive: f64 = [0.1; 10].iter().sum();
        assert_ne!(naive, 1.0);
        assert_eq!(exact(&[0.1; 10]), 1.0);
    }

    #[test]
    fn tiny_values_beside_huge_ones_and_alternating_signs() {
        let mut values = vec![1e20];
        values.extend(std::iter::repeat_n(1e-3, 1_000_000));
        values.push(-1e20);
        assert_eq!(exact(&values), reference(&values));
        let alternating: Vec<f64> =
            (0..10_000).map(|i| if i % 2 == 0 { 1.0 + i as f64 * 1e-9 } else { -1.0 }).collect();
        assert_eq!(exact(&alternating), reference(&alternating));
    }

    #[test]
    fn subnormals_add_exactly() {
        let tiny = f64::from_bits(1); // 2^-1074
        assert_eq!(exact(&[tiny; 7]), f64::from_bits(7));
        assert_eq!(exact(&[f64::MIN_POSITIVE, -tiny]), f64::MIN_POSITIVE - tiny);
    }

    #[test]
    fn ties_round_to_even_across_partials() {
        // 2^53 + 1 is a tie between 2^53 and 2^53 + 2; a tiny extra value breaks it upwards.
        let big = 9007199254740992.0;
        assert_eq!(exact(&[big, 1.0]), big);
        assert_eq!(exact(&[big, 1.0, 1e-30]), big + 2.0);
        assert_eq!(exact(&[big, 1.0, -1e-30]), big);
    }

    #[test]
    fn nan_and_infinities_as_postgresql() {
        assert!(exact(&[1.0, f64::NAN]).is_nan());
        assert!(exact(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert_eq!(exact(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert_eq!(exact(&[f64::MAX, f64::MAX]), f64::INFINITY);
        assert_eq!(ExactSum::new().value(), None, "no rows: NULL");
        assert_eq!(exact(&[-0.0, 0.0]), 0.0);
    }

    #[test]
    fn merges_in_any_order_give_the_same_bits() {
        let values: Vec<f64> =
            (0..5000).map(|i| ((i * 7919) % 1000) as f64 * 1.1e-3 + if i % 3 == 0 { 1e12 } else { -3.3e11 }).collect();
        let expected = reference(&values);
        for parts in [1, 2, 3, 7, 16] {
            let mut sums: Vec<ExactSum> = (0..parts).map(|_| ExactSum::new()).collect();
            for (i, v) in values.iter().enumerate() {
                sums[(i * 31) % parts].add(*v);
            }
            for order in [false, true] {
                let mut total = ExactSum::new();
                let iter: Box<dyn Iterator<Item = &ExactSum>> =
                    if order { Box::new(sums.iter().rev()) } else { Box::new(sums.iter()) };
                for s in iter {
                    total.merge(s);
                }
                assert_eq!(total.value().unwrap().to_bits(), expected.to_bits(), "{parts} parts");
                assert_eq!(total.count(), values.len() as u64);
            }
        }
    }

    #[test]
    fn partials_of_groups_summed_again_give_the_rows_exact_sum() {
        // The capacity views' shape: per-day partials, then their sum per period.
        let values: Vec<f64> =
            (0..3000).map(|i| ((i * 7919) % 997) as f64 * 0.1 + if i % 5 == 0 { 1e9 } else { -2.5e8 }).collect();
        let expected = reference(&values);
        for days in [1, 3, 40] {
            let mut groups = ExactGroups::new(Output::Partials);
            let input: ArrayRef = Arc::new(Float64Array::from(values.clone()));
            let indices: Vec<usize> = (0..values.len()).map(|i| (i * 13) % days).collect();
            groups.update_batch(&[input], &indices, None, days).unwrap();
            let lists = groups.evaluate(EmitTo::All).unwrap();
            let mut total = PartialsAccumulator { sum: ExactSum::new(), collect: false };
            total.update_batch(&[lists]).unwrap();
            assert_eq!(total.evaluate().unwrap(), ScalarValue::Float64(Some(expected)), "{days} days");
        }
        // No value: NULL partials, and a NULL sum of them.
        let mut empty = PartialsAccumulator { sum: ExactSum::new(), collect: true };
        assert!(
            empty.evaluate().unwrap().is_null()
                || matches!(empty.evaluate().unwrap(), ScalarValue::List(l) if l.is_null(0))
        );
    }

    #[test]
    fn batches_summed_as_integers_equal_the_reference_bit_for_bit() {
        let cases: Vec<Vec<f64>> = vec![
            (0..20_000).map(|i| ((i * 7919) % 1000) as f64 * 0.37).collect(),
            (0..20_000).map(|i| ((i * 31) % 97) as f64 * 0.1 - 4.0).collect(),
            vec![0.1, 0.2, 0.3],
            vec![1e16, 1.0, -1e16],
            vec![2f64.powi(53), 1.0, 1.0, 2f64.powi(-40)],
            vec![-0.0, 0.0],
            // Too far apart for 128 bits, or subnormal: the partials take them.
            vec![1e300, -1e300, 1e-300, 3.0],
            vec![5e-324, 1.0, -0.5],
            (0..9000).map(|i| if i % 2 == 0 { 1e20 } else { -1e20 + i as f64 }).collect(),
        ];
        for values in &cases {
            let expected = reference(values);
            let array: ArrayRef = Arc::new(Float64Array::from(values.clone()));
            let mut one = ExactAccumulator { sum: ExactSum::new(), output: Output::Sum };
            one.update_batch(std::slice::from_ref(&array)).unwrap();
            assert_eq!(one.evaluate().unwrap(), ScalarValue::Float64(Some(expected)), "{:?}", &values[..3]);
            assert_eq!(one.sum.count(), values.len() as u64);

            // Three groups, every fifth row null and every seventh filtered out.
            let with_nulls: Float64Array = values.iter().enumerate().map(|(i, v)| (i % 5 != 4).then_some(*v)).collect();
            let filter: BooleanArray = (0..values.len()).map(|i| Some(i % 7 != 6)).collect();
            let groups: Vec<usize> = (0..values.len()).map(|i| (i * 13 + i / 3) % 3).collect();
            let mut grouped = ExactGroups::new(Output::Sum);
            grouped.update_batch(&[Arc::new(with_nulls)], &groups, Some(&filter), 3).unwrap();
            let sums = grouped.evaluate(EmitTo::All).unwrap();
            let sums = sums.as_primitive::<Float64Type>();
            for g in 0..3 {
                let mine: Vec<f64> = (0..values.len())
                    .filter(|&i| groups[i] == g && i % 5 != 4 && i % 7 != 6)
                    .map(|i| values[i])
                    .collect();
                let want = if mine.is_empty() { None } else { Some(reference(&mine)) };
                let got = (!sums.is_null(g)).then(|| sums.value(g));
                assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "group {g} of {:?}", &values[..3]);
            }
        }
    }

    #[test]
    fn a_removed_value_leaves_the_exact_rest() {
        let mut s = ExactSum::new();
        for v in [0.1, 0.2, 1e16, 0.3] {
            s.add(v);
        }
        s.remove(1e16);
        assert_eq!(s.value(), Some(reference(&[0.1, 0.2, 0.3])));
        assert_eq!(s.mean(), Some(reference(&[0.1, 0.2, 0.3]) / 3.0));
    }
}
