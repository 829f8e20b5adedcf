//! ConnectWise `conditions` filters: a small parser and evaluator for the subset
//! of the grammar clients use (comparisons, `contains`, `like`, `in`, `and`/`or`/
//! `not`, parentheses, strings in double quotes, `[datetimes]`, numbers,
//! booleans, null), evaluated case-insensitively as ConnectWise does.

use std::cmp::Ordering;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Num(Decimal),
    Time(DateTime<Utc>),
    Bool(bool),
    Null,
    List(Vec<Lit>),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Cmp {
        field: String,
        op: String,
        value: Lit,
    },
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Op(String),
    Str(String),
    Num(String),
    Time(String),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    v.push(chars[i]);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated string".into());
                }
                i += 1;
                out.push(Tok::Str(v));
            }
            '[' => {
                let start = i + 1;
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated [datetime]".into());
                }
                out.push(Tok::Time(chars[start..i].iter().collect()));
                i += 1;
            }
            '=' | '!' | '<' | '>' => {
                let mut op = c.to_string();
                if i + 1 < chars.len() && chars[i + 1] == '=' {
                    op.push('=');
                    i += 1;
                }
                if op == "!" {
                    return Err("expected != ".into());
                }
                out.push(Tok::Op(op));
                i += 1;
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '/' | '.'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(k))
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            left = Cond::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Cond, String> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let inner = self.or()?;
            if self.next() != Some(Tok::RParen) {
                return Err("expected )".into());
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Cond, String> {
        let field = match self.next() {
            Some(Tok::Ident(f)) => f,
            other => return Err(format!("expected a field name, found {other:?}")),
        };
        let op = match self.next() {
            Some(Tok::Op(o)) => o,
            Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("contains") => "contains".into(),
            Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("like") => "like".into(),
            Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("in") => "in".into(),
            Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("not") => {
                if self.keyword("in") {
                    self.pos += 1;
                    "not in".into()
                } else {
                    return Err("expected `in` after `not`".into());
                }
            }
            other => {
                return Err(format!(
                    "expected an operator after {field}, found {other:?}"
                ));
            }
        };
        let value = self.literal()?;
        Ok(Cond::Cmp { field, op, value })
    }

    fn literal(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => Decimal::from_str(&n)
                .map(Lit::Num)
                .map_err(|_| format!("bad number {n}")),
            Some(Tok::Time(t)) => DateTime::parse_from_rfc3339(t.trim())
                .map(|d| Lit::Time(d.with_timezone(&Utc)))
                .map_err(|_| format!("bad datetime [{t}]")),
            Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Ident(k)) if k.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            Some(Tok::LParen) => {
                let mut items = Vec::new();
                loop {
                    items.push(self.literal()?);
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        other => return Err(format!("expected , or ) in list, found {other:?}")),
                    }
                }
                Ok(Lit::List(items))
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }
}

/// Parses a `conditions` string.
pub fn parse(s: &str) -> Result<Cond, String> {
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected trailing input at token {}", p.pos));
    }
    Ok(c)
}

/// Resolves `company/id`, `company.id`, and `lastUpdated` (→ `_info/lastUpdated`).
pub fn field<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = record;
    let parts: Vec<&str> = path.split(['/', '.']).collect();
    if parts.len() == 1
        && record.get(parts[0]).is_none()
        && let Some(v) = record.get("_info").and_then(|i| i.get(parts[0]))
    {
        return Some(v);
    }
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

fn compare(v: &Value, lit: &Lit) -> Option<Ordering> {
    match (v, lit) {
        (Value::Null, Lit::Null) => Some(Ordering::Equal),
        (_, Lit::Null) | (Value::Null, _) => None,
        (Value::Number(n), Lit::Num(d)) => Decimal::from_str(&n.to_string()).ok().map(|x| x.cmp(d)),
        (Value::String(s), Lit::Time(t)) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|x| x.with_timezone(&Utc).cmp(t)),
        (Value::String(s), Lit::Str(l)) => Some(s.to_lowercase().cmp(&l.to_lowercase())),
        (Value::Bool(b), Lit::Bool(l)) => Some(b.cmp(l)),
        _ => None,
    }
}

fn like(value: &str, pattern: &str) -> bool {
    let v = value.to_lowercase();
    let p = pattern.to_lowercase();
    let parts: Vec<&str> = p.split('%').collect();
    let mut rest = v.as_str();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        match rest.find(part) {
            Some(pos) if i > 0 || pos == 0 => rest = &rest[pos + part.len()..],
            _ => return false,
        }
    }
    parts.last().is_some_and(|l| l.is_empty()) || rest.is_empty()
}

/// Whether a record satisfies a condition.
pub fn eval(c: &Cond, record: &Value) -> bool {
    match c {
        Cond::And(a, b) => eval(a, record) && eval(b, record),
        Cond::Or(a, b) => eval(a, record) || eval(b, record),
        Cond::Not(a) => !eval(a, record),
        Cond::Cmp {
            field: f,
            op,
            value,
        } => {
            let v = field(record, f).unwrap_or(&Value::Null);
            match op.as_str() {
                "=" => compare(v, value) == Some(Ordering::Equal),
                "!=" => compare(v, value) != Some(Ordering::Equal),
                "<" => compare(v, value) == Some(Ordering::Less),
                "<=" => matches!(compare(v, value), Some(Ordering::Less | Ordering::Equal)),
                ">" => compare(v, value) == Some(Ordering::Greater),
                ">=" => matches!(compare(v, value), Some(Ordering::Greater | Ordering::Equal)),
                "contains" => match (v, value) {
                    (Value::String(s), Lit::Str(l)) => s.to_lowercase().contains(&l.to_lowercase()),
                    _ => false,
                },
                "like" => match (v, value) {
                    (Value::String(s), Lit::Str(l)) => like(s, l),
                    _ => false,
                },
                "in" | "not in" => {
                    let hit = match value {
                        Lit::List(items) => {
                            items.iter().any(|i| compare(v, i) == Some(Ordering::Equal))
                        }
                        other => compare(v, other) == Some(Ordering::Equal),
                    };
                    hit == (op == "in")
                }
                _ => false,
            }
        }
    }
}

/// Sorts records by an `orderBy` clause (`lastUpdated asc, id asc`).
pub fn sort<T: std::borrow::Borrow<Value>>(
    records: &mut [T],
    order_by: &str,
) -> Result<(), String> {
    let mut keys = Vec::new();
    for part in order_by.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let f = words.next().ok_or("empty orderBy term")?.to_string();
        let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("unknown sort direction {other}")),
        };
        keys.push((f, desc));
    }
    records.sort_by(|a, b| {
        let (a, b): (&Value, &Value) = (a.borrow(), b.borrow());
        for (f, desc) in &keys {
            let (x, y) = (
                field(a, f).unwrap_or(&Value::Null),
                field(b, f).unwrap_or(&Value::Null),
            );
            let o = match (x, y) {
                (Value::Number(p), Value::Number(q)) => {
                    let p = Decimal::from_str(&p.to_string()).unwrap_or_default();
                    let q = Decimal::from_str(&q.to_string()).unwrap_or_default();
                    p.cmp(&q)
                }
                (Value::String(p), Value::String(q)) => match (
                    DateTime::parse_from_rfc3339(p),
                    DateTime::parse_from_rfc3339(q),
                ) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    _ => p.cmp(q),
                },
                _ => Ordering::Equal,
            };
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compound_cursor_conditions_select_strictly_after() {
        let c = parse("(lastUpdated > [2026-11-02T09:00:00Z] or (lastUpdated = [2026-11-02T09:00:00Z] and id > 5)) and type != \"CreditMemo\"").unwrap();
        let r = |id: i64, at: &str, ty: &str| json!({"id": id, "type": ty, "_info": {"lastUpdated": at}});
        assert!(!eval(&c, &r(5, "2026-11-02T09:00:00Z", "Standard")));
        assert!(eval(&c, &r(6, "2026-11-02T09:00:00Z", "Standard")));
        assert!(eval(&c, &r(1, "2026-11-02T09:00:01Z", "Standard")));
        assert!(!eval(&c, &r(9, "2026-11-02T09:00:01Z", "CreditMemo")));
    }

    #[test]
    fn strings_compare_case_insensitively_and_like_uses_percent() {
        let r = json!({"name": "Globex Corporation", "company": {"id": 3}});
        assert!(eval(&parse("name = \"globex corporation\"").unwrap(), &r));
        assert!(eval(&parse("name like \"glob%\"").unwrap(), &r));
        assert!(eval(&parse("company/id in (1, 3)").unwrap(), &r));
        assert!(parse("name = ").is_err());
    }

    #[test]
    fn order_by_sorts_by_time_then_id() {
        let mut v = vec![
            json!({"id": 2, "_info": {"lastUpdated": "2026-11-02T09:00:00Z"}}),
            json!({"id": 1, "_info": {"lastUpdated": "2026-11-02T09:00:01Z"}}),
            json!({"id": 1, "_info": {"lastUpdated": "2026-11-02T09:00:00Z"}}),
        ];
        sort(&mut v, "lastUpdated asc, id asc").unwrap();
        let ids: Vec<i64> = v.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![1, 2, 1]);
    }
}
