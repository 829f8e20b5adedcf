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

/// Longest expression accepted, in characters.
pub const MAX_EXPR_CHARS: usize = 1_000;
/// Deepest nesting accepted: brackets of any kind plus conditional branches.
/// CEL's parser and evaluator recurse once per level; this keeps both far
/// from the stack's end on any thread.
pub const MAX_EXPR_DEPTH: usize = 12;

impl Expr {
    /// Compiles CEL source within [`MAX_EXPR_CHARS`] and [`MAX_EXPR_DEPTH`],
    /// checked before the parser sees it; otherwise the error is CEL's own message.
    pub fn compile(source: &str) -> Result<Expr, String> {
        let chars = source.chars().count();
        if chars > MAX_EXPR_CHARS {
            return Err(format!(
                "{chars} characters; an expression may have at most {MAX_EXPR_CHARS}"
            ));
        }
        let depth = nesting(source);
        if depth > MAX_EXPR_DEPTH {
            return Err(format!(
                "nested {depth} deep; an expression may nest at most {MAX_EXPR_DEPTH} deep"
            ));
        }
        if let Some(c) = source
            .chars()
            .find(|c| c.is_control() && !c.is_whitespace())
        {
            return Err(format!("contains the control character {c:?}"));
        }
        let program = Program::compile(source).map_err(|e| e.to_string())?;
        Ok(Expr {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    /// The parsed expression, for static checks.
    pub(crate) fn ast(&self) -> &cel::IdedExpr {
        self.program.expression()
    }
}

/// How deep `source` nests, read lexically: open brackets (outside string
/// literals) plus the conditionals (`?`) seen so far, whose else-branches nest.
fn nesting(source: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut conditionals = 0usize;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                // Skip the literal, escapes included (an unterminated one runs to the end).
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '?' => conditionals += 1,
            _ => {}
        }
        deepest = deepest.max(depth + conditionals);
    }
    deepest
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
    fn size_and_nesting_are_limited_before_the_parser_sees_the_expression() {
        let nested = |n: usize| format!("{}record.billable{}", "(".repeat(n), ")".repeat(n));
        assert!(Expr::compile(&nested(MAX_EXPR_DEPTH)).is_ok());
        let e = Expr::compile(&nested(MAX_EXPR_DEPTH + 1)).unwrap_err();
        assert!(e.contains("nest at most"), "{e}");
        // Far deeper than the stack would survive: refused, not overflowed.
        assert!(Expr::compile(&nested(400)).is_err());
        let ternaries = "true ? 'a' : ".repeat(MAX_EXPR_DEPTH + 1) + "'b'";
        assert!(Expr::compile(&ternaries).is_err());
        let long = format!("'{}'", "x".repeat(MAX_EXPR_CHARS));
        assert!(Expr::compile(&long).unwrap_err().contains("at most"));
        // Brackets inside string literals do not count.
        assert!(Expr::compile(&format!("record.notes == '{}'", "(".repeat(50))).is_ok());
        assert!(Expr::compile("record.notes == 'a\0b'").is_err());
    }

    #[test]
    fn nesting_that_the_parser_recurses_on_is_evaluated_on_a_small_stack() {
        // A worker thread's 2 MiB stack: the deepest accepted expression parses
        // and evaluates there.
        let deepest = format!(
            "{}record.billable{}",
            "(".repeat(MAX_EXPR_DEPTH),
            ")".repeat(MAX_EXPR_DEPTH)
        );
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let e = Expr::compile(&deepest).expect("compiles");
                let scope = Scope::new(&json!({"billable": true}), None, None);
                assert_eq!(scope.boolean(&e), Ok(true));
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
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
