//! Xero `where` filters: `Field=="text"`, `Field!="text"`, comparisons with
//! `DateTime(y, m, d)`, `Guid("…")`, numbers and booleans, joined by
//! `AND`/`&&` and `OR`/`||`, with parentheses. Field paths use dots
//! (`Contact.ContactID`). Dates in records may be `/Date(ms)/` strings.

use std::cmp::Ordering;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(Decimal),
    Date(NaiveDate),
    Bool(bool),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp(String, String, LitBox),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// A boxed literal (kept opaque outside this module).
#[derive(Debug, Clone, PartialEq)]
pub struct LitBox(Lit);

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        let b = t.as_bytes();
        if self.s.len() >= self.i + b.len()
            && self.s[self.i..self.i + b.len()].eq_ignore_ascii_case(b)
        {
            self.i += b.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut l = self.and()?;
        while self.eat("||") || self.eat("OR ") {
            l = Filter::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut l = self.atom()?;
        while self.eat("&&") || self.eat("AND ") {
            l = Filter::And(Box::new(l), Box::new(self.atom()?));
        }
        Ok(l)
    }

    fn atom(&mut self) -> Result<Filter, String> {
        if self.eat("(") {
            let f = self.or()?;
            if !self.eat(")") {
                return Err("expected )".into());
            }
            return Ok(f);
        }
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || self.s[self.i] == b'.'
                || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("expected a field at position {start}"));
        }
        let field = String::from_utf8_lossy(&self.s[start..self.i]).to_string();
        let op = ["==", "!=", ">=", "<=", ">", "<"]
            .into_iter()
            .find(|o| self.eat(o))
            .ok_or_else(|| format!("expected an operator after {field}"))?
            .to_string();
        let lit = self.lit()?;
        Ok(Filter::Cmp(field, op, LitBox(lit)))
    }

    fn lit(&mut self) -> Result<Lit, String> {
        self.ws();
        if self.eat("\"") {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' {
                self.i += 1;
            }
            let v = String::from_utf8_lossy(&self.s[start..self.i]).to_string();
            self.i += 1;
            return Ok(Lit::Str(v));
        }
        if self.eat("DateTime(") {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b')' {
                self.i += 1;
            }
            let inner = String::from_utf8_lossy(&self.s[start..self.i]).to_string();
            self.i += 1;
            let n: Vec<u32> = inner
                .split(',')
                .map(|p| p.trim().parse().unwrap_or(0))
                .collect();
            let d = NaiveDate::from_ymd_opt(
                *n.first().unwrap_or(&0) as i32,
                *n.get(1).unwrap_or(&0),
                *n.get(2).unwrap_or(&0),
            )
            .ok_or_else(|| format!("bad DateTime({inner})"))?;
            return Ok(Lit::Date(d));
        }
        if self.eat("Guid(\"") {
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != b'"' {
                self.i += 1;
            }
            let v = String::from_utf8_lossy(&self.s[start..self.i]).to_string();
            self.i += 1;
            if !self.eat(")") {
                return Err("expected ) after Guid".into());
            }
            return Ok(Lit::Str(v));
        }
        if self.eat("true") {
            return Ok(Lit::Bool(true));
        }
        if self.eat("false") {
            return Ok(Lit::Bool(false));
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_digit() || matches!(self.s[self.i], b'.' | b'-'))
        {
            self.i += 1;
        }
        let n = String::from_utf8_lossy(&self.s[start..self.i]).to_string();
        Decimal::from_str(&n)
            .map(Lit::Num)
            .map_err(|_| format!("expected a value, found {n:?}"))
    }
}

/// Parses a `where` string.
pub fn parse(s: &str) -> Result<Filter, String> {
    let mut p = P {
        s: s.as_bytes(),
        i: 0,
    };
    let f = p.or()?;
    p.ws();
    if p.i != s.len() {
        return Err(format!("unexpected input at position {}", p.i));
    }
    Ok(f)
}

/// Reads a date from a Xero record value.
pub fn date_of(v: &Value) -> Option<NaiveDate> {
    let s = v.as_str()?;
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let ms: i64 = inner
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect::<String>()
            .parse()
            .ok()?;
        return chrono::DateTime::from_timestamp_millis(ms).map(|t| t.date_naive());
    }
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

fn get<'a>(r: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(r, |cur, p| cur.get(p))
}

fn cmp(v: &Value, lit: &Lit) -> Option<Ordering> {
    match lit {
        Lit::Str(s) => v.as_str().map(|x| x.to_lowercase().cmp(&s.to_lowercase())),
        Lit::Num(d) => v
            .as_number()
            .and_then(|n| Decimal::from_str(&n.to_string()).ok())
            .map(|x| x.cmp(d)),
        Lit::Date(d) => date_of(v).map(|x| x.cmp(d)),
        Lit::Bool(b) => v.as_bool().map(|x| x.cmp(b)),
    }
}

/// Whether a record matches.
pub fn eval(f: &Filter, r: &Value) -> bool {
    match f {
        Filter::And(a, b) => eval(a, r) && eval(b, r),
        Filter::Or(a, b) => eval(a, r) || eval(b, r),
        Filter::Cmp(field, op, LitBox(lit)) => {
            let o = get(r, field).and_then(|v| cmp(v, lit));
            match op.as_str() {
                "==" => o == Some(Ordering::Equal),
                "!=" => o != Some(Ordering::Equal),
                ">" => o == Some(Ordering::Greater),
                ">=" => matches!(o, Some(Ordering::Greater | Ordering::Equal)),
                "<" => o == Some(Ordering::Less),
                "<=" => matches!(o, Some(Ordering::Less | Ordering::Equal)),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn date_ranges_and_references_filter() {
        let f = parse(
            "Type==\"ACCREC\" AND Date>=DateTime(2026, 11, 01) AND Date<=DateTime(2026, 11, 30)",
        )
        .unwrap();
        let inv = |d: &str| json!({"Type": "ACCREC", "Date": d});
        assert!(eval(&f, &inv("/Date(1794700800000+0000)/")));
        assert!(!eval(&f, &inv("2026-12-01")));
        let r = parse("Reference==\"FERRY-S-1\"").unwrap();
        assert!(eval(&r, &json!({"Reference": "ferry-s-1"})));
        assert!(eval(
            &parse("Contact.ContactID==Guid(\"abc\")").unwrap(),
            &json!({"Contact": {"ContactID": "abc"}})
        ));
        assert!(parse("Reference==").is_err());
    }
}
