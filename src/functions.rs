//! SQL functions of the engine that stand in for DataFusion's own where those are slow on the
//! store's data, or unbounded. Each gives the same answers as the function it replaces (a unit
//! test compares them) and hands it every input it has no faster way for; `repeat`, `lpad` and
//! `rpad` first refuse an output larger than [`MAX_STRING_BYTES`].

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature};

/// Every scalar function debtlens registers: the window's, these replacements, the forecast and
/// the quantile. The engine registers them, and so do a cluster's scheduler and executors, which
/// must resolve the same names to the same functions.
pub fn scalar_functions() -> Vec<ScalarUDF> {
    let mut functions = crate::window::functions();
    functions.extend(all());
    functions.push(crate::forecast::function());
    functions.push(crate::stats::quantile_function());
    functions
}

/// Every aggregate debtlens registers: the exact float sums and means (over DataFusion's of the
/// same names) and the attributed velocity tax's.
pub fn aggregate_functions() -> Vec<datafusion::logical_expr::AggregateUDF> {
    let mut functions = crate::exact::functions();
    functions.extend(crate::tax::functions());
    functions
}

/// The functions to register over DataFusion's of the same names.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(Cardinality { builtin: datafusion::functions_nested::cardinality::cardinality_udf() }),
        ScalarUDF::new_from_impl(Bounded { builtin: datafusion::functions::string::repeat(), grows: Grows::Repeat }),
        ScalarUDF::new_from_impl(Bounded { builtin: datafusion::functions::unicode::lpad(), grows: Grows::Pad }),
        ScalarUDF::new_from_impl(Bounded { builtin: datafusion::functions::unicode::rpad(), grows: Grows::Pad }),
    ]
}

/// The most bytes one call of a function that makes long strings from short ones may produce
/// for one batch of rows. DataFusion's `repeat` and `lpad`/`rpad` allocate what they are asked
/// for outside the memory pool: `repeat('ab', 1000000000)` took 3 GB past `--memory-limit
/// 512M`. PostgreSQL caps a value at 1 GB; here a batch's whole output is capped lower.
pub const MAX_STRING_BYTES: usize = 256 * 1024 * 1024;

/// How a bounded function's output grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Grows {
    /// `repeat(text, n)`: length(text) × n bytes.
    Repeat,
    /// `lpad(text, n [, fill])`, `rpad(...)`: n characters, each as long as the longest
    /// character of the fill (a space by default).
    Pad,
}

/// A function whose output size is checked against [`MAX_STRING_BYTES`] before it runs; an
/// answer over it is an error (SQLSTATE 53200 on the server), never an allocation.
#[derive(Debug)]
struct Bounded {
    builtin: Arc<ScalarUDF>,
    grows: Grows,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.grows == other.grows && self.builtin.name() == other.builtin.name()
    }
}
impl Eq for Bounded {}
impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.builtin.name().hash(state);
    }
}

impl Bounded {
    /// The bytes the call would produce, at most (saturating).
    fn output_bytes(&self, args: &ScalarFunctionArgs) -> DfResult<usize> {
        use datafusion::arrow::compute::cast;
        let rows = args.number_rows;
        let arrays: Vec<_> = args.args.iter().map(|a| a.to_array(rows)).collect::<DfResult<_>>()?;
        let counts = cast(&arrays[1], &DataType::Int64)?;
        let counts = counts.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let text = cast(&arrays[0], &DataType::LargeUtf8)?;
        let text = text.as_string::<i64>();
        let fill = arrays.get(2).map(|f| cast(f, &DataType::LargeUtf8)).transpose()?;
        let fill = fill.as_ref().map(|f| f.as_string::<i64>());
        let mut total: usize = 0;
        for i in 0..rows {
            if counts.is_null(i) || text.is_null(i) {
                continue;
            }
            let n = counts.value(i).max(0) as usize;
            let bytes = match self.grows {
                Grows::Repeat => text.value(i).len().saturating_mul(n),
                Grows::Pad => {
                    let widest = fill
                        .filter(|f| f.is_valid(i))
                        .map_or(1, |f| f.value(i).chars().map(char::len_utf8).max().unwrap_or(1));
                    n.saturating_mul(widest)
                }
            };
            total = total.saturating_add(bytes);
        }
        Ok(total)
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.builtin.name()
    }
    fn aliases(&self) -> &[String] {
        self.builtin.aliases()
    }
    fn signature(&self) -> &Signature {
        self.builtin.signature()
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        self.builtin.return_type(args)
    }
    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        self.builtin.coerce_types(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.len() >= 2 {
            let bytes = self.output_bytes(&args)?;
            if bytes > MAX_STRING_BYTES {
                return Err(datafusion::error::DataFusionError::ResourcesExhausted(format!(
                    "{}() would make {} MiB of text in one batch; the limit is {} MiB (PostgreSQL caps one value at 1 GB)",
                    self.name(),
                    bytes / (1024 * 1024),
                    MAX_STRING_BYTES / (1024 * 1024)
                )));
            }
        }
        self.builtin.invoke_with_args(args)
    }
}

/// `cardinality(list)` over lists of plain values (the store's `systems` and `delay_reasons`):
/// a list's length is the difference of two offsets. DataFusion's own takes every row's list
/// out as an array of its own, an allocation a row: about 10 ms of delay_by_reason's 56 ms over
/// the 125k features of a 1M-feature store's window. Nested lists and maps go to it.
#[derive(Debug)]
struct Cardinality {
    builtin: Arc<ScalarUDF>,
}

impl PartialEq for Cardinality {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}
impl Eq for Cardinality {}
impl Hash for Cardinality {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl ScalarUDFImpl for Cardinality {
    fn name(&self) -> &str {
        "cardinality"
    }
    fn signature(&self) -> &Signature {
        self.builtin.signature()
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        self.builtin.return_type(args)
    }
    fn coerce_types(&self, args: &[DataType]) -> DfResult<Vec<DataType>> {
        self.builtin.coerce_types(args)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if let [ColumnarValue::Array(array)] = args.args.as_slice()
            && let Some(list) = array.as_list_opt::<i32>()
            && !list.value_type().is_nested()
        {
            let lengths = list.offsets().windows(2).map(|pair| (pair[1] - pair[0]) as u64);
            let lengths = UInt64Array::new(lengths.collect(), list.nulls().cloned());
            return Ok(ColumnarValue::Array(Arc::new(lengths)));
        }
        self.builtin.invoke_with_args(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A huge repeat or pad is refused before it allocates; ordinary ones answer as DataFusion's.
    #[tokio::test]
    async fn growing_functions_are_bounded() {
        let ctx = SessionContext::new();
        for f in all() {
            ctx.register_udf(f);
        }
        let err = ctx.sql("SELECT length(repeat('ab', 1000000000))").await.unwrap().collect().await.unwrap_err();
        assert!(err.to_string().contains("repeat() would make 1907 MiB of text"), "{err}");
        let err = ctx.sql("SELECT lpad('x', 2000000000, 'é')").await.unwrap().collect().await.unwrap_err();
        assert!(err.to_string().contains("lpad() would make"), "{err}");
        let ok = ctx
            .sql("SELECT repeat('ab', 3) AS r, lpad('7', 3, '0') AS l, rpad('a', 2) AS p, repeat(NULL, 3) AS n")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&ok).unwrap().to_string();
        assert!(text.contains("| ababab | 007 | a  |   |"), "{text}");
    }
    use datafusion::arrow::array::{ArrayRef, ListBuilder, RecordBatch, StringBuilder};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    /// Both functions over the same lists: nulls, empty lists, nulls inside, nested lists. The
    /// lists are a table's column, so they reach the function as an array, as a store's do.
    #[tokio::test]
    async fn cardinality_answers_as_datafusions_own() {
        let mut lists = ListBuilder::new(StringBuilder::new());
        for list in [
            Some(vec![Some("a"), Some("b")]),
            None,
            Some(vec![]),
            Some(vec![Some("é"), None, Some("c")]),
            Some(vec![Some("x")]),
        ] {
            match list {
                Some(items) => lists.append_value(items),
                None => lists.append_null(),
            }
        }
        let lists: ArrayRef = Arc::new(lists.finish());
        let schema = Arc::new(Schema::new(vec![Field::new("l", lists.data_type().clone(), true)]));
        let table =
            MemTable::try_new(Arc::clone(&schema), vec![vec![RecordBatch::try_new(schema, vec![lists]).unwrap()]])
                .unwrap();
        let table = Arc::new(table);
        let sql = "SELECT cardinality(l) AS n FROM t";
        let nested = "SELECT cardinality([[1, 2], [3]]) AS n";
        let builtin = SessionContext::new();
        let ours = SessionContext::new();
        for f in all() {
            ours.register_udf(f);
        }
        builtin.register_table("t", table.clone()).unwrap();
        ours.register_table("t", table).unwrap();
        for query in [sql, nested] {
            let expected = builtin.sql(query).await.unwrap().collect().await.unwrap();
            let got = ours.sql(query).await.unwrap().collect().await.unwrap();
            assert_eq!(got, expected, "{query}");
        }
        let got = ours.sql(sql).await.unwrap().collect().await.unwrap();
        let n = got[0].column(0).as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
        assert_eq!(n.iter().collect::<Vec<_>>(), [Some(2), None, Some(0), Some(3), Some(1)]);
    }
}
