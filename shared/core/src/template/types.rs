//! Static checks of template expressions against the canonical model's JSON
//! Schema, at load: every variable and field an expression names exists, a
//! string compared with an enumerated field is one of its values, and the
//! result has the type its use needs (a filter gives true or false, a value
//! source gives text). A typo (`record.rolee`, `projcet.x`) is a load error with
//! its key path, never a field that is silently absent at run time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use cel::common::ast::{Expr as Node, IdedExpr, LiteralValue, operators};
use ferry_canon::Domain;
use serde_json::Value;

use super::eval::Expr;

/// What a JSON value in the canonical model can be, as an expression sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// Not known statically (a comprehension variable, a function's result).
    Any,
    Null,
    Bool,
    Int,
    Float,
    Str,
    /// Text that is one of these values (a snake_case enum).
    Enum(BTreeSet<String>),
    List(Box<Ty>),
    /// An object with free keys (custom fields).
    Map(Box<Ty>),
    /// An object with known fields.
    Object(BTreeMap<String, Ty>),
    /// One of several (an optional field is `Union([T, Null])`).
    Union(Vec<Ty>),
}

impl Ty {
    fn union(mut tys: Vec<Ty>) -> Ty {
        let mut flat = Vec::new();
        for t in tys.drain(..) {
            match t {
                Ty::Union(inner) => flat.extend(inner),
                t if !flat.contains(&t) => flat.push(t),
                _ => {}
            }
        }
        match flat.len() {
            1 => flat.pop().expect("one"),
            _ => Ty::Union(flat),
        }
    }

    /// The alternatives that are not null.
    fn present(&self) -> Vec<&Ty> {
        match self {
            Ty::Union(ts) => ts.iter().filter(|t| **t != Ty::Null).collect(),
            Ty::Null => Vec::new(),
            t => vec![t],
        }
    }

    fn name(&self) -> String {
        match self {
            Ty::Any => "a value".into(),
            Ty::Null => "null".into(),
            Ty::Bool => "true or false".into(),
            Ty::Int => "an integer".into(),
            Ty::Float => "a number".into(),
            Ty::Str | Ty::Enum(_) => "text".into(),
            Ty::List(_) => "a list".into(),
            Ty::Map(_) | Ty::Object(_) => "a map".into(),
            Ty::Union(ts) => ts.iter().map(Ty::name).collect::<Vec<_>>().join(" or "),
        }
    }

    /// Whether every non-null alternative satisfies `ok` (`Any` always does).
    fn all_present(&self, ok: &dyn Fn(&Ty) -> bool) -> bool {
        self.present().into_iter().all(|t| *t == Ty::Any || ok(t))
    }
}

/// What an expression's result is used as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// A filter (`skip_when`): true or false.
    Condition,
    /// A value source or description: text, a number or a boolean (made text).
    Text,
}

/// The variables an expression sees, with their types.
#[derive(Debug, Clone)]
pub struct Vars {
    record: Ty,
    project: Ty,
    account: Ty,
}

impl Vars {
    /// For expressions of one domain's rule.
    pub fn for_domain(domain: Domain) -> Vars {
        let m = model();
        Vars {
            record: m.records.get(&domain).cloned().unwrap_or(Ty::Any),
            project: Ty::union(vec![m.def("Project"), Ty::Null]),
            account: Ty::union(vec![m.def("Account"), Ty::Null]),
        }
    }

    /// For expressions used by several domains (dimensions, tax): `record` is any
    /// of the records that become ERP documents.
    pub fn for_domains(domains: &[Domain]) -> Vars {
        let m = model();
        let record = Ty::union(
            domains
                .iter()
                .filter_map(|d| m.records.get(d).cloned())
                .collect(),
        );
        Vars {
            record,
            ..Vars::for_domain(Domain::Customers)
        }
    }
}

struct Model {
    defs: HashMap<String, Ty>,
    records: HashMap<Domain, Ty>,
}

impl Model {
    fn def(&self, name: &str) -> Ty {
        self.defs.get(name).cloned().unwrap_or(Ty::Any)
    }
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(ferry_canon::schema::CHECKED_IN).expect("the schema is JSON");
        let empty = serde_json::Map::new();
        let defs_json = schema["$defs"].as_object().unwrap_or(&empty);
        let mut b = Builder {
            defs_json,
            done: HashMap::new(),
            busy: BTreeSet::new(),
        };
        let names: Vec<String> = defs_json.keys().cloned().collect();
        for n in &names {
            b.def(n);
        }
        let mut records = HashMap::new();
        for alt in schema["oneOf"].as_array().into_iter().flatten() {
            let domain = alt
                .pointer("/properties/domain/const")
                .and_then(Value::as_str)
                .and_then(Domain::parse);
            let record = alt.pointer("/properties/record").map(|r| b.ty(r));
            if let (Some(d), Some(r)) = (domain, record) {
                records.insert(d, r);
            }
        }
        Model {
            defs: b.done,
            records,
        }
    })
}

struct Builder<'a> {
    defs_json: &'a serde_json::Map<String, Value>,
    done: HashMap<String, Ty>,
    busy: BTreeSet<String>,
}

impl Builder<'_> {
    fn def(&mut self, name: &str) -> Ty {
        if let Some(t) = self.done.get(name) {
            return t.clone();
        }
        // A type that contains itself is not checked below that point.
        if !self.busy.insert(name.to_string()) {
            return Ty::Any;
        }
        let t = match self.defs_json.get(name) {
            Some(v) => self.ty(v),
            None => Ty::Any,
        };
        self.busy.remove(name);
        self.done.insert(name.to_string(), t.clone());
        t
    }

    fn ty(&mut self, v: &Value) -> Ty {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            return self.def(r.trim_start_matches("#/$defs/"));
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = v.get(key).and_then(Value::as_array) {
                return Ty::union(alts.iter().map(|a| self.ty(a)).collect());
            }
        }
        if let Some(values) = v.get("enum").and_then(Value::as_array) {
            let names: BTreeSet<String> = values
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect();
            if names.len() == values.len() {
                return Ty::Enum(names);
            }
        }
        if let Some(c) = v.get("const").and_then(Value::as_str) {
            return Ty::Enum(BTreeSet::from([c.to_string()]));
        }
        match v.get("type") {
            Some(Value::Array(types)) => Ty::union(
                types
                    .iter()
                    .map(|t| self.typed(t.as_str().unwrap_or(""), v))
                    .collect(),
            ),
            Some(Value::String(t)) => self.typed(t, v),
            _ => Ty::Any,
        }
    }

    fn typed(&mut self, t: &str, v: &Value) -> Ty {
        match t {
            "string" => Ty::Str,
            "boolean" => Ty::Bool,
            "integer" => Ty::Int,
            "number" => Ty::Float,
            "null" => Ty::Null,
            "array" => Ty::List(Box::new(v.get("items").map_or(Ty::Any, |i| self.ty(i)))),
            "object" => match v.get("properties").and_then(Value::as_object) {
                Some(props) => {
                    Ty::Object(props.iter().map(|(k, p)| (k.clone(), self.ty(p))).collect())
                }
                None => Ty::Map(Box::new(match v.get("additionalProperties") {
                    Some(ap @ Value::Object(_)) => self.ty(ap),
                    _ => Ty::Any,
                })),
            },
            _ => Ty::Any,
        }
    }
}

/// Checks `expr` for `use_` with `vars`; every problem found, in words.
pub fn check(expr: &Expr, vars: &Vars, use_: Use) -> Vec<String> {
    let mut c = Checker {
        vars,
        bound: Vec::new(),
        problems: Vec::new(),
    };
    let t = c.infer(expr.ast());
    // Null is always allowed (a filter on a missing value is an error at run
    // time, a missing value takes its source's default); name what else it gives.
    let shown = Ty::union(t.present().into_iter().cloned().collect()).name();
    match use_ {
        Use::Condition if !t.all_present(&|t| *t == Ty::Bool) => c
            .problems
            .push(format!("gives {shown}, expected true or false")),
        Use::Text
            if !t.all_present(&|t| matches!(t, Ty::Str | Ty::Enum(_) | Ty::Int | Ty::Bool)) =>
        {
            c.problems.push(format!("gives {shown}, expected text"))
        }
        _ => {}
    }
    c.problems.dedup();
    c.problems
}

struct Checker<'a> {
    vars: &'a Vars,
    /// Names bound by comprehensions (`exists(x, …)`), innermost last.
    bound: Vec<String>,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn infer(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Node::Ident(name) => self.ident(name),
            Node::Select(s) => {
                let operand = self.infer(&s.operand);
                if s.test {
                    // has(x.f): the field must exist for the test to mean anything.
                    self.field(&operand, &s.field, &s.operand);
                    return Ty::Bool;
                }
                self.field(&operand, &s.field, &s.operand)
            }
            Node::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Int(_) | LiteralValue::UInt(_) => Ty::Int,
                LiteralValue::Double(_) => Ty::Float,
                LiteralValue::String(_) | LiteralValue::Bytes(_) => Ty::Str,
                LiteralValue::Null => Ty::Null,
            },
            Node::List(l) => {
                let items: Vec<Ty> = l.elements.iter().map(|x| self.infer(x)).collect();
                Ty::List(Box::new(if items.is_empty() {
                    Ty::Any
                } else {
                    Ty::union(items)
                }))
            }
            Node::Map(m) => {
                for entry in &m.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                        self.infer(&me.key);
                        self.infer(&me.value);
                    }
                }
                Ty::Map(Box::new(Ty::Any))
            }
            Node::Comprehension(c) => {
                self.infer(&c.iter_range);
                self.bound.push(c.iter_var.clone());
                if let Some(v2) = &c.iter_var2 {
                    self.bound.push(v2.clone());
                }
                self.bound.push(c.accu_var.clone());
                for part in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    self.infer(part);
                }
                let n = 2 + usize::from(c.iter_var2.is_some());
                self.bound.truncate(self.bound.len() - n);
                Ty::Any
            }
            Node::Call(call) => self.call(call),
            Node::Struct(_) | Node::Unspecified => Ty::Any,
        }
    }

    fn ident(&mut self, name: &str) -> Ty {
        if self.bound.iter().any(|b| b == name) {
            return Ty::Any;
        }
        match name {
            "record" => self.vars.record.clone(),
            "project" => self.vars.project.clone(),
            "account" => self.vars.account.clone(),
            // CEL's type names (`type(x) == string`).
            "int" | "uint" | "double" | "string" | "bool" | "bytes" | "list" | "map"
            | "null_type" | "type" => Ty::Any,
            other => {
                self.problems.push(format!(
                    "unknown variable `{other}`; expressions see `record`, `project` and `account`"
                ));
                Ty::Any
            }
        }
    }

    fn field(&mut self, operand: &Ty, field: &str, at: &IdedExpr) -> Ty {
        let mut found = Vec::new();
        let mut known_fields = BTreeSet::new();
        let mut open = false;
        for t in operand.present() {
            match t {
                Ty::Object(fields) => match fields.get(field) {
                    Some(f) => found.push(f.clone()),
                    None => known_fields.extend(fields.keys().cloned()),
                },
                Ty::Map(v) => {
                    open = true;
                    found.push(Ty::union(vec![(**v).clone(), Ty::Null]));
                }
                Ty::Any => open = true,
                _ => {}
            }
        }
        if !found.is_empty() {
            return Ty::union(found);
        }
        if open {
            return Ty::Any;
        }
        let path = path_of(at).unwrap_or_else(|| "this value".into());
        if known_fields.is_empty() {
            self.problems.push(format!(
                "`{path}` is {}, which has no field `{field}`",
                operand.name()
            ));
        } else {
            let near = nearest(field, &known_fields)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            self.problems
                .push(format!("`{path}` has no field `{field}`{near}"));
        }
        Ty::Any
    }

    fn call(&mut self, call: &cel::common::ast::CallExpr) -> Ty {
        let target = call.target.as_ref().map(|t| self.infer(t));
        let args: Vec<Ty> = call.args.iter().map(|a| self.infer(a)).collect();
        match call.func_name.as_str() {
            operators::EQUALS | operators::NOT_EQUALS => {
                self.enum_literal(&call.args, &args);
                Ty::Bool
            }
            operators::IN => {
                if let (Some(Ty::List(_)), Some(needle)) = (args.get(1), args.first()) {
                    self.in_list(needle, &call.args[1]);
                }
                Ty::Bool
            }
            operators::LOGICAL_AND
            | operators::LOGICAL_OR
            | operators::LOGICAL_NOT
            | operators::NOT_STRICTLY_FALSE
            | operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS
            | "startsWith"
            | "endsWith"
            | "contains"
            | "matches" => Ty::Bool,
            operators::CONDITIONAL => Ty::union(args.into_iter().skip(1).collect()),
            operators::INDEX | operators::OPT_INDEX => match args.first() {
                Some(t) => Ty::union(
                    t.present()
                        .into_iter()
                        .map(|t| match t {
                            Ty::List(i) | Ty::Map(i) => (**i).clone(),
                            _ => Ty::Any,
                        })
                        .collect(),
                ),
                None => Ty::Any,
            },
            operators::ADD => match (args.first(), target) {
                (Some(Ty::Str), _) => Ty::Str,
                _ => Ty::Any,
            },
            "size" | "int" => Ty::Int,
            "string" | "lowerAscii" | "upperAscii" | "trim" => Ty::Str,
            _ => Ty::Any,
        }
    }

    /// `x == 'value'` where `x` is an enumerated field: `value` must be one of it.
    fn enum_literal(&mut self, nodes: &[IdedExpr], tys: &[Ty]) {
        for (i, j) in [(0, 1), (1, 0)] {
            let (Some(t), Some(Node::Literal(LiteralValue::String(s)))) =
                (tys.get(i), nodes.get(j).map(|n| &n.expr))
            else {
                continue;
            };
            self.one_of(t, s.as_ref(), &nodes[i]);
        }
    }

    fn in_list(&mut self, needle: &Ty, list: &IdedExpr) {
        if let Node::List(l) = &list.expr {
            for item in &l.elements {
                if let Node::Literal(LiteralValue::String(s)) = &item.expr {
                    self.one_of(needle, s.as_ref(), list);
                }
            }
        }
    }

    fn one_of(&mut self, t: &Ty, value: &str, at: &IdedExpr) {
        let mut allowed = BTreeSet::new();
        for alt in t.present() {
            match alt {
                Ty::Enum(vs) => allowed.extend(vs.iter().cloned()),
                _ => return,
            }
        }
        if !allowed.is_empty() && !allowed.contains(value) {
            let path = path_of(at).unwrap_or_else(|| "the value".into());
            self.problems.push(format!(
                "`{path}` is never {value:?}; it is one of {}",
                allowed
                    .iter()
                    .map(|v| format!("{v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

/// `a.b.c` for a selection chain on a variable.
fn path_of(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Node::Ident(n) => Some(n.clone()),
        Node::Select(s) if !s.test => Some(format!("{}.{}", path_of(&s.operand)?, s.field)),
        _ => None,
    }
}

/// The known name closest to a misspelt one, if it is close.
fn nearest<'a>(name: &str, known: &'a BTreeSet<String>) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str, domain: Domain, use_: Use) -> Vec<String> {
        check(
            &Expr::compile(src).expect("compiles"),
            &Vars::for_domain(domain),
            use_,
        )
    }

    #[test]
    fn fields_the_model_has_pass_and_misspelt_ones_are_named_with_a_suggestion() {
        assert!(problems("record.role", Domain::TimeEntries, Use::Text).is_empty());
        assert!(
            problems(
                "project.dimensions.department.code",
                Domain::TimeEntries,
                Use::Text
            )
            .is_empty()
        );
        assert!(
            problems(
                "project.custom_fields['Region']",
                Domain::TimeEntries,
                Use::Text
            )
            .is_empty()
        );
        let p = problems("record.rolee", Domain::TimeEntries, Use::Text);
        assert_eq!(
            p,
            vec!["`record` has no field `rolee` (did you mean `role`?)"]
        );
        let p = problems("projcet.x", Domain::TimeEntries, Use::Text);
        assert!(p[0].starts_with("unknown variable `projcet`"), "{p:?}");
        let p = problems("record.role", Domain::Expenses, Use::Text);
        assert!(
            p[0].contains("no field `role`"),
            "an expense has no role: {p:?}"
        );
    }

    #[test]
    fn a_filter_must_give_true_or_false_and_a_value_must_give_text() {
        assert!(
            problems(
                "project.billing_type != 'time_and_materials'",
                Domain::TimeEntries,
                Use::Condition
            )
            .is_empty()
        );
        assert!(problems("record.billable", Domain::TimeEntries, Use::Condition).is_empty());
        let p = problems("record.notes", Domain::TimeEntries, Use::Condition);
        assert_eq!(p, vec!["gives text, expected true or false"]);
        let p = problems("record.bill_rate", Domain::TimeEntries, Use::Text);
        assert_eq!(p, vec!["gives a map, expected text"]);
        assert!(problems("record.hours", Domain::TimeEntries, Use::Text).is_empty());
    }

    #[test]
    fn a_string_compared_with_an_enumerated_field_must_be_one_of_its_values() {
        let p = problems(
            "project.billing_type == 'time_and_material'",
            Domain::TimeEntries,
            Use::Condition,
        );
        assert!(p[0].contains("is never \"time_and_material\""), "{p:?}");
        assert!(
            problems(
                "record.approval in ['approved', 'submitted']",
                Domain::TimeEntries,
                Use::Condition
            )
            .is_empty()
        );
        let p = problems(
            "record.approval in ['approved', 'aproved']",
            Domain::TimeEntries,
            Use::Condition,
        );
        assert_eq!(p.len(), 1, "{p:?}");
    }

    #[test]
    fn comprehension_variables_and_macros_are_known() {
        assert!(
            problems(
                "has(record.notes) && ['a', 'b'].exists(x, x == record.notes)",
                Domain::TimeEntries,
                Use::Condition
            )
            .is_empty()
        );
        let p = problems("has(record.nots)", Domain::TimeEntries, Use::Condition);
        assert!(p[0].contains("no field `nots`"), "{p:?}");
    }

    #[test]
    fn expressions_shared_by_domains_see_any_of_their_records() {
        let vars = Vars::for_domains(&[Domain::TimeEntries, Domain::Customers]);
        let ok = Expr::compile("record.tax_code").unwrap();
        assert!(check(&ok, &vars, Use::Text).is_empty());
        let bad = Expr::compile("record.tax_cod").unwrap();
        assert_eq!(check(&bad, &vars, Use::Text).len(), 1);
    }
}
