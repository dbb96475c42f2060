//! SQL functions of the engine that stand in for DataFusion's own where those are slow on the
//! store's data. Each gives the same answers as the function it replaces (a unit test compares
//! them) and hands it every input it has no faster way for.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature};

/// The functions to register over DataFusion's of the same names.
pub fn all() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(Cardinality {
        builtin: datafusion::functions_nested::cardinality::cardinality_udf(),
    })]
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
