//! CEL evaluation for templates. Expressions see `record` (the canonical record),
//! `project` and `account` (related canonical records, or `null`) as JSON:
//! decimals are strings, dates are `YYYY-MM-DD` strings, enums are snake_case.
//! Money is never a CEL number, so no expression can do float arithmetic on it.

use std::sync::Arc;

use cel::{Context, ExecutionError, Program, Value};

/// A compiled expression with its source text (for error messages).
#[derive(Clone)]
pub struct Expr {
    pub source: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl Expr {
    /// Compiles CEL source; the error is CEL's own message.
    pub fn compile(source: &str) -> Result<Expr, String> {
        let program = Program::compile(source).map_err(|e| e.to_string())?;
        Ok(Expr {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }
}

/// The variables an expression can read.
pub struct Scope {
    ctx: Context<'static, 'static>,
}

impl Scope {
    pub fn new(
        record: &serde_json::Value,
        project: Option<&serde_json::Value>,
        account: Option<&serde_json::Value>,
    ) -> Scope {
        let mut ctx = Context::default();
        let null = serde_json::Value::Null;
        // add_variable only fails for values that cannot be represented; JSON always can.
        let _ = ctx.add_variable("record", record.clone());
        let _ = ctx.add_variable("project", project.unwrap_or(&null).clone());
        let _ = ctx.add_variable("account", account.unwrap_or(&null).clone());
        Scope { ctx }
    }

    /// Evaluates a boolean expression. A missing field is an error here: a filter
    /// that cannot be decided must not silently let a record through.
    pub fn boolean(&self, expr: &Expr) -> Result<bool, String> {
        match expr.program.execute(&self.ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "`{}` gave {}, expected true or false",
                expr.source,
                type_name(&other)
            )),
            Err(e) => Err(format!("`{}`: {}", expr.source, e)),
        }
    }

    /// Evaluates a value expression. A missing field or `null` yields `None`
    /// (the value source's default then applies); strings, integers and booleans
    /// become text.
    pub fn text(&self, expr: &Expr) -> Result<Option<String>, String> {
        match expr.program.execute(&self.ctx) {
            Ok(Value::String(s)) => Ok(Some(s.to_string())),
            Ok(Value::Int(i)) => Ok(Some(i.to_string())),
            Ok(Value::UInt(i)) => Ok(Some(i.to_string())),
            Ok(Value::Bool(b)) => Ok(Some(b.to_string())),
            Ok(Value::Null) => Ok(None),
            Ok(other) => Err(format!(
                "`{}` gave {}, expected text",
                expr.source,
                type_name(&other)
            )),
            Err(ExecutionError::NoSuchKey(_)) => Ok(None),
            // `project.x` when project is null: treat as absent.
            Err(ExecutionError::NoSuchOverload(o))
                if o.argument_types().first().map(String::as_str) == Some("null_type") =>
            {
                Ok(None)
            }
            Err(e) => Err(format!("`{}`: {}", expr.source, e)),
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "text",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        _ => "a value of another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_fields_are_absent_for_values_but_errors_for_filters() {
        let scope = Scope::new(&json!({"role": "Senior"}), None, None);
        let missing = Expr::compile("record.department").unwrap();
        assert_eq!(scope.text(&missing).unwrap(), None);
        assert!(
            scope
                .boolean(&Expr::compile("record.approved").unwrap())
                .is_err()
        );
        let through_null = Expr::compile("project.dimensions.department.code").unwrap();
        assert_eq!(scope.text(&through_null).unwrap(), None);
    }

    #[test]
    fn syntax_errors_are_reported_at_compile_time() {
        assert!(Expr::compile("record.approval ==").is_err());
    }

    #[test]
    fn filters_see_related_records() {
        let scope = Scope::new(
            &json!({"billable": true}),
            Some(&json!({"billing_type": "fixed_fee"})),
            None,
        );
        let e = Expr::compile("project.billing_type != 'time_and_materials'").unwrap();
        assert!(scope.boolean(&e).unwrap());
    }
}
