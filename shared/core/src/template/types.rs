//! Static checks of template expressions against the canonical model's JSON
//! Schema, at load: every variable and field an expression names exists, a
//! string compared with an enumerated field is one of its values, and the
//! result has the type its use needs (a filter gives true or false, a value
//! source gives text). A typo (`record.rolee`, `projcet.x`) is a load error with
//! its key path, never a field that is silently absent at run time.
//!
//! Size: the typed template, one type per section of the file (about 700
//! lines), then its tests.

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
    /// An integer or a float, not known which.
    Number,
    Str,
    Bytes,
    /// A type value (`type(x)`, `string`).
    Type,
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
            Ty::Float | Ty::Number => "a number".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Type => "a type".into(),
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
    // A missing value is allowed where it means something: a value source then
    // takes its default. A filter must decide, so it cannot be only null.
    let shown = Ty::union(t.present().into_iter().cloned().collect()).name();
    match use_ {
        Use::Condition if t == Ty::Null => {
            c.problems.push("gives null, expected true or false".into())
        }
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

/// The CEL standard functions Ferry's evaluator has (no extensions, no
/// `duration`/`timestamp`), by name, called as functions or as methods.
const FUNCTIONS: &[&str] = &[
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "dyn",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
];

struct Checker<'a> {
    vars: &'a Vars,
    /// Names bound by comprehensions (`exists(x, …)`) with their types, innermost last.
    bound: Vec<(String, Ty)>,
    problems: Vec<String>,
}

impl Checker<'_> {
    fn infer(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Node::Ident(name) => self.ident(name),
            Node::Select(s) => {
                let operand = self.infer(&s.operand);
                let t = self.field(&operand, &s.field, &s.operand);
                // has(x.f): the field must exist for the test to mean anything.
                if s.test { Ty::Bool } else { t }
            }
            Node::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Int(_) | LiteralValue::UInt(_) => Ty::Int,
                LiteralValue::Double(_) => Ty::Float,
                LiteralValue::String(_) => Ty::Str,
                LiteralValue::Bytes(_) => Ty::Bytes,
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
                let mut values = Vec::new();
                for entry in &m.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                        self.infer(&me.key);
                        values.push(self.infer(&me.value));
                    }
                }
                Ty::Map(Box::new(if values.is_empty() {
                    Ty::Any
                } else {
                    Ty::union(values)
                }))
            }
            Node::Comprehension(c) => {
                // The macros (all, exists, exists_one, map, filter) expand to a
                // loop: its variables have the range's element type and the
                // accumulator its start's; the result is typed with them bound.
                let range = self.infer(&c.iter_range);
                let element = Ty::union(
                    range
                        .present()
                        .into_iter()
                        .map(|t| match t {
                            Ty::List(i) => (**i).clone(),
                            Ty::Map(_) | Ty::Object(_) => Ty::Str,
                            _ => Ty::Any,
                        })
                        .collect(),
                );
                let depth = self.bound.len();
                self.bound.push((c.iter_var.clone(), element));
                if let Some(v2) = &c.iter_var2 {
                    self.bound.push((v2.clone(), Ty::Any));
                }
                let accu = self.infer(&c.accu_init);
                self.bound.push((c.accu_var.clone(), accu));
                self.infer(&c.loop_cond);
                self.infer(&c.loop_step);
                let result = self.infer(&c.result);
                self.bound.truncate(depth);
                result
            }
            Node::Call(call) => self.call(call),
            Node::Struct(_) | Node::Unspecified => Ty::Any,
        }
    }

    fn ident(&mut self, name: &str) -> Ty {
        if let Some((_, t)) = self.bound.iter().rev().find(|(b, _)| b == name) {
            return t.clone();
        }
        match name {
            "record" => self.vars.record.clone(),
            "project" => self.vars.project.clone(),
            "account" => self.vars.account.clone(),
            // CEL's type names (`type(x) == string`).
            "int" | "uint" | "double" | "string" | "bool" | "bytes" | "list" | "map"
            | "null_type" | "type" => Ty::Type,
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
        let name = call.func_name.as_str();
        match name {
            operators::EQUALS | operators::NOT_EQUALS => {
                self.comparable(&call.args, &args);
                self.enum_literal(&call.args, &args);
                Ty::Bool
            }
            operators::LESS
            | operators::LESS_EQUALS
            | operators::GREATER
            | operators::GREATER_EQUALS => {
                self.comparable(&call.args, &args);
                Ty::Bool
            }
            operators::IN => {
                if let (Some(needle), Some(list)) = (call.args.first(), args.get(1)) {
                    for t in list.present() {
                        if let Ty::List(element) = t
                            && let Node::Literal(LiteralValue::String(s)) = &needle.expr
                        {
                            let at = match &call.args[1].expr {
                                Node::List(l) => l.elements.first().unwrap_or(&call.args[1]),
                                _ => &call.args[1],
                            };
                            self.one_of(element, s.as_ref(), at);
                        }
                    }
                    if let (Node::List(l), Some(t)) = (&call.args[1].expr, args.first()) {
                        for item in &l.elements {
                            if let Node::Literal(LiteralValue::String(s)) = &item.expr {
                                self.one_of(t, s.as_ref(), needle);
                            }
                        }
                    }
                }
                Ty::Bool
            }
            operators::LOGICAL_AND | operators::LOGICAL_OR | operators::LOGICAL_NOT => {
                for (node, t) in call.args.iter().zip(&args) {
                    self.boolean(node, t, name);
                }
                Ty::Bool
            }
            operators::NOT_STRICTLY_FALSE => Ty::Bool,
            operators::CONDITIONAL => {
                if let (Some(node), Some(t)) = (call.args.first(), args.first()) {
                    self.boolean(node, t, "?:");
                }
                Ty::union(args.into_iter().skip(1).collect())
            }
            operators::INDEX | operators::OPT_INDEX => self.index(call, &args),
            operators::ADD => match (args.first(), args.get(1)) {
                (Some(a), Some(b))
                    if a == b && matches!(a, Ty::Str | Ty::Bytes | Ty::Int | Ty::Float) =>
                {
                    a.clone()
                }
                (Some(Ty::List(a)), Some(Ty::List(b))) => {
                    Ty::List(Box::new(Ty::union(vec![(**a).clone(), (**b).clone()])))
                }
                (Some(Ty::Enum(_) | Ty::Str), Some(Ty::Enum(_) | Ty::Str)) => Ty::Str,
                _ => Ty::Any,
            },
            operators::SUBSTRACT
            | operators::MULTIPLY
            | operators::DIVIDE
            | operators::MODULO
            | operators::NEGATE => {
                if args.iter().all(|a| *a == Ty::Int) {
                    Ty::Int
                } else if args.contains(&Ty::Float) {
                    Ty::Float
                } else {
                    Ty::Number
                }
            }
            _ if !FUNCTIONS.contains(&name) && !name.starts_with('@') && !name.starts_with('_') => {
                self.problems.push(format!(
                    "unknown function `{name}`; expressions may use {}",
                    FUNCTIONS.join(", ")
                ));
                Ty::Any
            }
            "size" | "int" | "uint" => Ty::Int,
            "double" => Ty::Float,
            "string" => Ty::Str,
            "bytes" => Ty::Bytes,
            "bool" | "matches" | "contains" | "startsWith" | "endsWith" => {
                if name != "bool" {
                    for t in target
                        .iter()
                        .chain(args.first().filter(|_| target.is_none()))
                    {
                        if !t.all_present(&|t| matches!(t, Ty::Str | Ty::Enum(_))) {
                            self.problems
                                .push(format!("`{name}` reads text, not {}", t.name()));
                        }
                    }
                }
                Ty::Bool
            }
            "type" => Ty::Type,
            // `dyn` only says "check this at run time": it is what it wraps.
            "dyn" => args.into_iter().next().unwrap_or(Ty::Any),
            _ => Ty::Any,
        }
    }

    /// `x[i]`: a list's element, a map's value, or, for a record with a
    /// literal key, that field (checked like `x.key`).
    fn index(&mut self, call: &cel::common::ast::CallExpr, args: &[Ty]) -> Ty {
        let Some(t) = args.first() else {
            return Ty::Any;
        };
        if let (Some(Node::Literal(LiteralValue::String(key))), Some(on)) =
            (call.args.get(1).map(|k| &k.expr), call.args.first())
            && t.present().iter().any(|t| matches!(t, Ty::Object(_)))
        {
            return self.field(t, key.as_ref(), on);
        }
        Ty::union(
            t.present()
                .into_iter()
                .map(|t| match t {
                    Ty::List(i) | Ty::Map(i) => (**i).clone(),
                    _ => Ty::Any,
                })
                .collect(),
        )
    }

    /// An operand that must be true or false.
    fn boolean(&mut self, node: &IdedExpr, t: &Ty, op: &str) {
        if *t == Ty::Null || !t.all_present(&|t| *t == Ty::Bool) {
            let what = path_of(node)
                .map(|p| format!("`{p}`"))
                .unwrap_or_else(|| "an operand".into());
            self.problems.push(format!(
                "{what} of `{}` gives {}, expected true or false",
                op.trim_matches('_'),
                t.name()
            ));
        }
    }

    /// Two values compared must be of kinds that can be equal or ordered.
    fn comparable(&mut self, nodes: &[IdedExpr], tys: &[Ty]) {
        let (Some(a), Some(b)) = (tys.first(), tys.get(1)) else {
            return;
        };
        let kind = |t: &Ty| -> Option<&'static str> {
            let kinds: BTreeSet<&'static str> = t
                .present()
                .into_iter()
                .filter_map(|t| match t {
                    Ty::Bool => Some("true or false"),
                    Ty::Int | Ty::Float | Ty::Number => Some("a number"),
                    Ty::Str | Ty::Enum(_) => Some("text"),
                    Ty::Bytes => Some("bytes"),
                    Ty::List(_) => Some("a list"),
                    Ty::Map(_) | Ty::Object(_) => Some("a map"),
                    Ty::Type => Some("a type"),
                    Ty::Any | Ty::Null | Ty::Union(_) => None,
                })
                .collect();
            // Known only when every alternative is of one kind.
            let all_known = t.present().iter().all(|t| !matches!(t, Ty::Any));
            (all_known && kinds.len() == 1).then(|| *kinds.iter().next().expect("one"))
        };
        if let (Some(ka), Some(kb)) = (kind(a), kind(b))
            && ka != kb
        {
            let what = nodes
                .first()
                .and_then(path_of)
                .map(|p| format!("`{p}`"))
                .unwrap_or_else(|| "the left side".into());
            self.problems
                .push(format!("{what} is {ka} and is compared with {kb}"));
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

    #[test]
    fn what_a_filter_cannot_decide_is_refused() {
        for bad in [
            "1 + 2",
            "-(1)",
            "null",
            "double(1)",
            "type(record)",
            "dyn(record.notes)",
            "[1, 2].map(x, x)",
            "[1].filter(x, x > 0)",
            "nosuchfn(record)",
            "record.role.nosuch()",
            "record.notes ? true : false",
            "record.notes && true",
            "!record.notes",
            "record.notes < 5",
            "record.approval == 1",
            "duration('1s') == duration('1s')",
            "[1].all(x, x)",
        ] {
            let p = problems(bad, Domain::TimeEntries, Use::Condition);
            assert!(!p.is_empty(), "{bad} was accepted as a filter");
        }
        for good in [
            "record.billable && !has(record.notes)",
            "size(record.role) > 3 || record.hours == '1'",
            "['a', 'b'].exists(x, x == record.role)",
            "[record.role].all(r, r.startsWith('Sen'))",
            "record.approval in ['approved', 'submitted']",
            "dyn(record.billable)",
            "type(record.role) == string",
            "record.notes == null",
        ] {
            assert_eq!(
                problems(good, Domain::TimeEntries, Use::Condition),
                Vec::<String>::new(),
                "{good}"
            );
        }
    }

    #[test]
    fn index_access_and_lists_are_checked_like_fields() {
        let p = problems("record['nosuch']", Domain::TimeEntries, Use::Text);
        assert!(p[0].contains("no field `nosuch`"), "{p:?}");
        let p = problems(
            "record['rolee'] == 'x'",
            Domain::TimeEntries,
            Use::Condition,
        );
        assert!(p[0].contains("did you mean `role`"), "{p:?}");
        for bad in [
            "project['billing_type'] == 'fixed_fe'",
            "'fixed_fe' in [project.billing_type]",
            "[project.billing_type].exists(b, b == 'fixed_fe')",
            "project.billing_type == b'fixed_fe'",
        ] {
            let p = problems(bad, Domain::TimeEntries, Use::Condition);
            assert!(!p.is_empty(), "{bad} was accepted");
        }
        let p = problems(
            "record.approval in ['approved', 'aproved']",
            Domain::TimeEntries,
            Use::Condition,
        );
        assert!(
            p[0].starts_with("`record.approval` is never \"aproved\""),
            "{p:?}"
        );
        for bad in ["[1].map(x, x)", "dyn([1])", "b'x'", "[record.role]"] {
            let p = problems(bad, Domain::TimeEntries, Use::Text);
            assert!(!p.is_empty(), "{bad} was accepted as text");
        }
    }
}
