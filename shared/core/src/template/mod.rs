//! Mapping templates: declarative, versioned TOML files (a partner base plus an
//! optional customer override), validated on load with errors that name the file,
//! the key path and what is wrong.
//!
//! Size: the template's public face (about 590 lines: its types' accessors and
//! the typed view rules use); loading is in `load`, tests in `tests`.

pub mod eval;
mod fit;
mod load;
pub mod spec;
pub mod types;

use std::collections::BTreeMap;
use std::fmt;

use ferry_canon::{Currency, DimensionKind, Domain};

use crate::hash::hash_json;
use crate::ports::Owner;
use crate::posting::DocStatus;
pub use eval::{Expr, Scope};
pub use spec::*;
use types::{Use, Vars};

/// Largest template file read, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// Longest code or value a template gives the ERP (item and account codes,
/// tracking options, tax types), in characters.
pub const MAX_VALUE_CHARS: usize = 255;

/// One problem found while loading a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub file: String,
    /// Dotted key path, e.g. `domains.time_entries.skip_when[0].when`.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names come from the file: a control character in a table name must
        // reach a terminal as text, not as an escape sequence.
        match self.line {
            Some(l) => write!(f, "{}:{}: ", printable(&self.file), l)?,
            None => write!(f, "{}: ", printable(&self.file))?,
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", printable(&self.path))?;
        }
        f.write_str(&printable(&self.message))
    }
}

/// `s` with control and invisible characters written as `\u{..}`.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || eval::invisible(c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() || eval::invisible(c) {
                    format!("\\u{{{:x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Longest key shown whole in a key path; a longer one is cut.
const MAX_KEY_SHOWN: usize = 64;

/// A key from a file (a table name, a connector name) as one segment of a
/// key path a person reads: as written when it is a plain name, quoted and
/// escaped when it holds what a path uses (`.`, `[`, quotes, spaces) or what
/// a terminal would act on, and cut when it is longer than anyone types.
pub fn key_segment(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if key.chars().count() > MAX_KEY_SHOWN {
        let cut: String = key.chars().take(MAX_KEY_SHOWN).collect();
        format!("{cut:?}…")
    } else if plain {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// All problems found in a template, one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateErrors(pub Vec<TemplateError>);

impl fmt::Display for TemplateErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A template file's name (for messages) and text.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub name: String,
    pub text: String,
}

impl TemplateSource {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        TemplateSource {
            name: name.into(),
            text: text.into(),
        }
    }

    /// Reads a regular file of at most [`MAX_TEMPLATE_BYTES`] (a device or a
    /// FIFO, which may never end, is refused unread); the error names the file.
    pub fn read(path: &std::path::Path) -> Result<Self, TemplateErrors> {
        use std::io::Read;
        let fail = |message: String| {
            TemplateErrors(vec![TemplateError {
                file: path.display().to_string(),
                path: String::new(),
                line: None,
                message,
            }])
        };
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        // A FIFO or a device can block or never end: a template is a file.
        match file.metadata() {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(fail("not a regular file".into())),
            Err(e) => return Err(fail(format!("cannot read: {e}"))),
        }
        let mut bytes = Vec::new();
        file.take(MAX_TEMPLATE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if bytes.len() > MAX_TEMPLATE_BYTES {
            return Err(fail(format!(
                "larger than {MAX_TEMPLATE_BYTES} bytes; a template is a small text file"
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| fail(format!("not UTF-8 text: {e}")))?;
        Ok(TemplateSource::new(path.display().to_string(), text))
    }
}

/// Where a value comes from, compiled.
#[derive(Debug, Clone)]
pub struct CompiledSource {
    pub expr: Option<Expr>,
    pub map: Option<String>,
    pub default: Option<String>,
    pub value: Option<String>,
    /// The key path in the template, for messages.
    pub path: String,
}

/// A domain rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub domain: Domain,
    pub spec: DomainRule,
    pub owner: Owner,
    pub skip_when: Vec<(Expr, String)>,
    pub item: Option<CompiledSource>,
    pub account: Option<CompiledSource>,
    pub rate: Option<CompiledSource>,
    pub description: Option<Expr>,
    pub required_dimensions: Vec<DimensionKind>,
    pub invoice_status: DocStatus,
}

/// Plausibility bounds, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledBounds {
    pub max_hourly_rate: rust_decimal::Decimal,
    pub max_amount: rust_decimal::Decimal,
    pub max_days_ahead: u32,
    pub max_days_back: u32,
}

/// A dimension rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledDimension {
    pub kind: DimensionKind,
    pub source: CompiledSource,
    pub erp_category: Option<String>,
}

/// A loaded, validated template.
#[derive(Debug, Clone)]
pub struct Template {
    pub spec: TemplateSpec,
    /// `base@1.2.0+acme@3#a1b2c3d4e5f6`: names, versions and a content hash, so
    /// every ERP document can say exactly which mapping produced it.
    pub version: String,
    pub currency: Currency,
    /// The firm's time zone (`defaults.time_zone`).
    pub time_zone: chrono_tz::Tz,
    pub bounds: CompiledBounds,
    pub rules: BTreeMap<Domain, CompiledRule>,
    pub dimensions: Vec<CompiledDimension>,
    pub tax: CompiledSource,
}

/// Domains that can become ERP documents, and how.
pub fn postable(domain: Domain) -> bool {
    POSTABLE.contains(&domain)
}

/// The domains [`postable`] accepts.
const POSTABLE: [Domain; 7] = [
    Domain::Customers,
    Domain::Projects,
    Domain::TimeEntries,
    Domain::Expenses,
    Domain::BillingEvents,
    Domain::Invoices,
    Domain::CreditMemos,
];

/// Compiles an expression and checks it against the canonical model for its use.
fn compile_checked(source: &str, vars: &Vars, use_: Use) -> Result<Expr, String> {
    let expr = Expr::compile(source).map_err(|m| format!("invalid CEL expression: {m}"))?;
    let problems = types::check(&expr, vars, use_);
    if problems.is_empty() {
        Ok(expr)
    } else {
        Err(format!("`{source}`: {}", problems.join("; ")))
    }
}

/// A code or value the template hands the ERP: printable, not empty, not too long.
fn check_value(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = v.chars().find(|c| c.is_control() || eval::invisible(*c)) {
        return Err(format!(
            "contains the character {c:?}; codes are printable text"
        ));
    }
    if v.trim() != v {
        return Err("starts or ends with spaces".into());
    }
    let n = v.chars().count();
    if n > MAX_VALUE_CHARS {
        return Err(format!("{n} characters; at most {MAX_VALUE_CHARS}"));
    }
    Ok(())
}

/// One structural problem: its key path, what is wrong, and the keys to leave
/// out so that the rest of the template can still be read and checked.
struct Structural {
    path: String,
    message: String,
    prune: Vec<String>,
}

/// Every problem serde finds in the merged template: each section read on its
/// own, and within a section each key on its own (so three wrong keys are three
/// problems), with what to leave out to read the rest.
fn section_errors(merged: &toml::Table) -> Vec<Structural> {
    fn message<E: std::fmt::Display>(e: &E) -> String {
        // toml appends where in the value it was; the path already says.
        let m = e.to_string();
        m.split("\nin `")
            .next()
            .unwrap_or(&m)
            .trim_end()
            .to_string()
    }
    /// A section (or one entry of a section) read as `T`; on failure each of
    /// its keys is read on its own over `base` (the least a `T` needs).
    fn read<T: serde::de::DeserializeOwned>(
        at: &[String],
        v: &toml::Value,
        base: &[(&str, toml::Value)],
        out: &mut Vec<Structural>,
    ) {
        let Err(e) = serde_path_to_error::deserialize::<_, T>(v.clone()) else {
            return;
        };
        let path = at
            .iter()
            .map(|p| key_segment(p))
            .collect::<Vec<_>>()
            .join(".");
        let before = out.len();
        if let Some(t) = v.as_table() {
            for (k, item) in t {
                let mut one: toml::Table = base
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect();
                one.insert(k.clone(), item.clone());
                if let Err(e) = serde_path_to_error::deserialize::<_, T>(toml::Value::Table(one)) {
                    let inner = e.path().to_string();
                    let mut prune = at.to_vec();
                    prune.push(k.clone());
                    out.push(Structural {
                        path: if inner == "." {
                            format!("{path}.{}", key_segment(k))
                        } else {
                            format!("{path}.{inner}")
                        },
                        message: message(e.inner()),
                        prune,
                    });
                }
            }
        }
        if out.len() == before {
            // Not one key's fault (a required key is missing): the whole entry.
            let inner = e.path().to_string();
            out.push(Structural {
                path: if inner == "." {
                    path
                } else {
                    format!("{path}.{inner}")
                },
                message: message(e.inner()),
                prune: at.to_vec(),
            });
        }
    }
    fn each<T: serde::de::DeserializeOwned>(
        section: &str,
        v: &toml::Value,
        base: &[(&str, toml::Value)],
        out: &mut Vec<Structural>,
    ) {
        match v.as_table() {
            Some(t) => {
                for (k, item) in t {
                    read::<T>(&[section.to_string(), k.clone()], item, base, out);
                }
            }
            None => out.push(Structural {
                path: section.to_string(),
                message: "must be a table".into(),
                prune: vec![section.to_string()],
            }),
        }
    }
    let text = |s: &str| toml::Value::String(s.into());
    let mut out = Vec::new();
    if !merged.contains_key("template") {
        out.push(Structural {
            path: "template".into(),
            message: "missing: every template starts with a [template] table".into(),
            prune: Vec::new(),
        });
    }
    for (key, v) in merged {
        let at = [key.clone()];
        match key.as_str() {
            "template" => read::<Header>(
                &at,
                v,
                &[("name", text("x")), ("version", text("x")), ("psa", text("x")), ("erp", text("x"))],
                &mut out,
            ),
            "defaults" => read::<Defaults>(&at, v, &[], &mut out),
            "domains" => each::<DomainRule>(key, v, &[("direction", text("none"))], &mut out),
            "value_maps" => each::<BTreeMap<String, String>>(key, v, &[], &mut out),
            "dimensions" => each::<DimensionRule>(key, v, &[], &mut out),
            "tax" => read::<TaxRule>(&at, v, &[], &mut out),
            "periods" => read::<PeriodRule>(&at, v, &[], &mut out),
            "bounds" => read::<Bounds>(&at, v, &[], &mut out),
            other => out.push(Structural {
                path: key_segment(other),
                message: "unknown section; expected template, defaults, domains, value_maps, dimensions, tax, periods or bounds".into(),
                prune: vec![other.to_string()],
            }),
        }
    }
    out
}

/// `table` without the key at `path` (a list of keys from the top).
fn prune(table: &mut toml::Table, path: &[String]) {
    match path {
        [] => {}
        [last] => {
            table.remove(last);
        }
        [first, rest @ ..] => {
            if let Some(toml::Value::Table(t)) = table.get_mut(first) {
                prune(t, rest);
            }
        }
    }
}

fn summarisable(domain: Domain) -> bool {
    matches!(
        domain,
        Domain::TimeEntries | Domain::Expenses | Domain::BillingEvents
    )
}

/// Who owns a domain's record-level exceptions unless the template says otherwise.
pub fn default_owner(domain: Domain) -> Owner {
    match domain {
        Domain::Invoices
        | Domain::CreditMemos
        | Domain::Payments
        | Domain::TaxCodes
        | Domain::RevenueSchedules
        | Domain::PurchaseCommitments
        | Domain::Currencies
        | Domain::Dimensions => Owner::Finance,
        _ => Owner::ProjectOperations,
    }
}

impl Template {
    /// The compiled rule for a domain, if the template mentions it.
    pub fn rule(&self, domain: Domain) -> Option<&CompiledRule> {
        self.rules.get(&domain)
    }

    /// The direction of a domain; domains the template does not mention are not synced.
    pub fn direction(&self, domain: Domain) -> Direction {
        self.rules
            .get(&domain)
            .map(|r| r.spec.direction)
            .unwrap_or(Direction::None)
    }

    pub fn value_map(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.spec.value_maps.get(name)
    }
}

fn parse_table(src: &TemplateSource) -> Result<toml::Table, TemplateErrors> {
    src.text.parse::<toml::Table>().map_err(|e| {
        let line = e.span().map(|s| {
            src.text[..s.start.min(src.text.len())]
                .lines()
                .count()
                .max(1)
        });
        TemplateErrors(vec![TemplateError {
            file: src.name.clone(),
            path: String::new(),
            line,
            message: e.message().to_string(),
        }])
    })
}

/// Takes the override's `[template]` identity out before merging (so the base's
/// name and version stay), and returns `name@version` for the template version.
fn overlay_header(src: &TemplateSource, table: &mut toml::Table) -> Result<String, TemplateErrors> {
    let fail = |path: &str, message: &str| {
        TemplateErrors(vec![TemplateError {
            file: src.name.clone(),
            path: path.to_string(),
            line: None,
            message: message.to_string(),
        }])
    };
    let Some(toml::Value::Table(header)) = table.get_mut("template") else {
        return Err(fail(
            "template",
            "an override needs a [template] table with at least `version`",
        ));
    };
    let version = match header.remove("version") {
        Some(toml::Value::String(v)) => v,
        Some(_) => return Err(fail("template.version", "must be a string")),
        None => {
            return Err(fail(
                "template.version",
                "an override must carry its own version",
            ));
        }
    };
    let name = match header.remove("name") {
        Some(toml::Value::String(n)) => n,
        Some(_) => return Err(fail("template.name", "must be a string")),
        None => header
            .get("customer")
            .and_then(|v| v.as_str())
            .unwrap_or("override")
            .to_string(),
    };
    for key in ["psa", "erp"] {
        if header.contains_key(key) {
            return Err(fail(
                &format!("template.{key}"),
                "an override cannot change the connectors of its base template",
            ));
        }
    }
    Ok(format!("{name}@{version}"))
}

fn base_header_version(table: &toml::Table) -> String {
    table
        .get("template")
        .and_then(|t| t.get("version"))
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_string()
}

/// Deep-merges `overlay` into `base`: tables merge, everything else is replaced.
fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Whether a dotted path (as serde_path_to_error prints it) exists in a table.
fn has_path(table: &toml::Table, path: &str) -> bool {
    let mut current = table;
    for (i, part) in path_segments(path).iter().enumerate() {
        let found = current.get(part.as_str()).or_else(|| {
            // A quoted segment names the key it quotes.
            current
                .iter()
                .find(|(k, _)| format!("{k:?}") == *part)
                .map(|(_, v)| v)
        });
        match found {
            Some(toml::Value::Table(t)) => current = t,
            Some(_) => return true,
            None => return i > 0 && part.is_empty(),
        }
    }
    true
}

/// A key path's segments: split at `.` outside quotes, without `[n]` indices.
fn path_segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in path.chars() {
        if quoted {
            cur.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                cur.push(c);
            }
            '.' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|p| match p.find('[') {
            Some(i) if !p.starts_with('"') => p[..i].to_string(),
            _ => p,
        })
        .collect()
}

#[cfg(test)]
mod tests;
