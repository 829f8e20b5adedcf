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
/// Deepest parsed expression accepted (operations within operations), which
/// bounds the evaluator's recursion as the nesting bounds the parser's.
pub const MAX_TREE_DEPTH: usize = 32;

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
        // The string-aware count, and brackets wherever they are: no quoting the
        // lexer might misread lets deeper nesting reach the parser.
        let depth = nesting(source).max(bracket_depth(source));
        if depth > MAX_EXPR_DEPTH {
            return Err(format!(
                "nested {depth} deep; an expression may nest at most {MAX_EXPR_DEPTH} deep"
            ));
        }
        if let Some(c) = source
            .chars()
            .find(|c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || invisible(*c))
        {
            return Err(format!(
                "contains the character {c:?}, which is not printable"
            ));
        }
        let program = Program::compile(source).map_err(|e| e.to_string())?;
        // The evaluator recurses once per level of the parsed tree, and a flat
        // `1 + 1 + …` parses into a deep one.
        let depth = tree_depth(program.expression());
        if depth > MAX_TREE_DEPTH {
            return Err(format!(
                "{depth} operations deep once parsed; an expression may be at most {MAX_TREE_DEPTH}"
            ));
        }
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

/// How deep `source` nests, read lexically: open brackets outside string
/// literals, plus the conditionals (`?`) whose else-branch nests within the
/// same brackets. String literals are read as CEL writes them: quoted with `'`
/// or `"`, single or tripled, raw (`r'…'`, no escapes) or not; a literal that
/// does not end runs to the end.
fn nesting(source: &str) -> usize {
    let chars: Vec<char> = source.chars().collect();
    let mut deepest = 0usize;
    // One count of conditionals per bracket level: `(a ? b : c) + (d ? e : f)`
    // nests one deep, `a ? b : c ? d : e` two.
    let mut levels: Vec<usize> = vec![0];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                let raw = i > 0
                    && matches!(chars[i - 1], 'r' | 'R')
                    && (i < 2
                        || !(chars[i - 2].is_alphanumeric() || chars[i - 2] == '_')
                        || matches!(chars[i - 2], 'b' | 'B'));
                let triple = chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c);
                i += if triple { 3 } else { 1 };
                while i < chars.len() {
                    if !raw && chars[i] == '\\' {
                        i += 2;
                        continue;
                    }
                    if chars[i] == c
                        && (!triple
                            || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c)))
                    {
                        i += if triple { 3 } else { 1 };
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            '(' | '[' | '{' => levels.push(0),
            ')' | ']' | '}' if levels.len() > 1 => {
                levels.pop();
            }
            '?' => {
                if let Some(top) = levels.last_mut() {
                    *top += 1;
                }
            }
            _ => {}
        }
        deepest = deepest.max(levels.len() - 1 + levels.iter().sum::<usize>());
        i += 1;
    }
    deepest
}

/// The deepest run of open brackets anywhere in `source`, inside string
/// literals or not: a bound that no quoting can talk its way past.
fn bracket_depth(source: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in source.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// How deep a parsed expression is, walked without recursion.
fn tree_depth(root: &cel::IdedExpr) -> usize {
    use cel::common::ast::{EntryExpr, Expr as Node};
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((e, d)) = stack.pop() {
        deepest = deepest.max(d);
        let mut push = |c| stack.push((c, d + 1));
        match &e.expr {
            Node::Call(c) => {
                c.target.iter().for_each(|t| push(t));
                c.args.iter().for_each(&mut push);
            }
            Node::Comprehension(c) => {
                for part in [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ] {
                    push(part);
                }
            }
            Node::List(l) => l.elements.iter().for_each(&mut push),
            Node::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        push(&me.key);
                        push(&me.value);
                    }
                }
            }
            Node::Struct(st) => {
                for entry in &st.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        push(&f.value);
                    }
                }
            }
            Node::Select(sel) => push(&sel.operand),
            Node::Ident(_) | Node::Literal(_) | Node::Unspecified => {}
        }
    }
    deepest
}

/// Characters that change how text reads without showing (zero-width, bidi
/// overrides, soft hyphen, byte-order mark): never wanted in a code or an
/// expression.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
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
        // Brackets inside string literals count too (no quoting can hide
        // nesting), and a few are fine.
        assert!(Expr::compile("record.notes == '(((' || record.notes == ']]'").is_ok());
        assert!(Expr::compile(&format!("record.notes == '{}'", "(".repeat(50))).is_err());
        // A flat expression that parses deep is refused before it is evaluated.
        let flat = format!("{} == 1", vec!["1"; 40].join(" + "));
        assert!(
            Expr::compile(&flat)
                .unwrap_err()
                .contains("operations deep")
        );
        assert!(Expr::compile("record.notes == 'a\0b'").is_err());
        // Quoting cannot hide nesting: raw and triple-quoted literals end where CEL ends them.
        let nested = |n: usize| format!("{}record.billable{}", "(".repeat(n), ")".repeat(n));
        assert!(Expr::compile(&format!("r'\\' != '' && {}", nested(100))).is_err());
        assert!(Expr::compile(&format!("'''it's''' != '' && {}", nested(15))).is_err());
        assert!(Expr::compile(&format!("r\"\\\" != '' && {}", nested(15))).is_err());
        assert!(Expr::compile(&format!("'{}' != '' && {}", "(".repeat(10), nested(10))).is_err());
        // Conditionals side by side do not nest.
        let side_by_side = ["(record.billable ? 'a' : 'b')"; 12].join(" + ");
        assert!(Expr::compile(&side_by_side).is_ok(), "{side_by_side}");
        let chained = "true ? 'a' : ".repeat(MAX_EXPR_DEPTH + 1) + "'b'";
        assert!(Expr::compile(&chained).is_err());
        assert!(Expr::compile("record.notes == 'a\u{200B}b'").is_err());
        assert!(Expr::compile("record.notes == 'a\u{0B}b'").is_err());
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
        // Long flat forms the parser may also recurse on, as long as allowed.
        let n = MAX_EXPR_CHARS / 20;
        let flat = vec![
            vec!["record.billable"; n].join(" && "),
            vec!["record.billable"; n].join(" || "),
            format!("{}record.billable", "!".repeat(MAX_EXPR_CHARS - 20)),
            format!("{}1 > 0", "-".repeat(MAX_EXPR_CHARS - 10)),
            format!("size('{}') > 0", "x".repeat(MAX_EXPR_CHARS - 20)),
            format!("{} == 1", vec!["1"; n * 3].join(" + ")),
            format!("has(record{})", ".a".repeat(MAX_EXPR_CHARS / 2 - 20)),
            "true ? 'a' : ".repeat(MAX_EXPR_DEPTH) + "'b' == 'b'",
        ];
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let scope = Scope::new(&json!({"billable": true}), None, None);
                for f in &flat {
                    assert!(f.chars().count() <= MAX_EXPR_CHARS, "{f}");
                    if let Ok(e) = Expr::compile(f) {
                        let _ = scope.boolean(&e);
                    }
                }
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
