//! Scalar subqueries as PostgreSQL runs them. DataFusion plans a correlated scalar subquery only
//! when its SELECT is an aggregate ("Correlated scalar subquery must be aggregated to return at
//! most one row"), and catalog queries are full of plain ones (SQLAlchemy's `get_columns`,
//! pgjdbc's `getTypeInfo`). PostgreSQL runs them and fails only when one returns more than one
//! row. dialect.rs wraps such a subquery's column in `single_value(...)`: an aggregate that is
//! the one value of its group, NULL for none, and PostgreSQL's error (21000) for more than one,
//! so the rewrite changes no answer.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

pub const NAME: &str = "single_value";

pub fn single_value_udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(SingleValue { signature: Signature::any(1, Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValue {
    signature: Signature,
}

impl AggregateUDFImpl for SingleValue {
    fn name(&self) -> &str {
        NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(One { value: ScalarValue::try_from(args.return_field.data_type())?, rows: 0 }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format!("{}[value]", args.name), args.return_field.data_type().clone(), true)),
            Arc::new(Field::new(format!("{}[rows]", args.name), DataType::Int64, false)),
        ])
    }
}

#[derive(Debug)]
struct One {
    value: ScalarValue,
    rows: i64,
}

impl One {
    fn add(&mut self, value: ScalarValue, rows: i64) -> Result<()> {
        self.rows += rows;
        if self.rows > 1 {
            return exec_err!("more than one row returned by a subquery used as an expression");
        }
        if rows == 1 {
            self.value = value;
        }
        Ok(())
    }
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for i in 0..values[0].len() {
            self.add(ScalarValue::try_from_array(&values[0], i)?, 1)?;
        }
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let rows = states[1].as_primitive::<Int64Type>();
        for i in 0..rows.len() {
            self.add(ScalarValue::try_from_array(&states[0], i)?, rows.value(i))?;
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), ScalarValue::Int64(Some(self.rows))])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size()
    }
}
