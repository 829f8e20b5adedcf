//! Loading a template: read and merge the files, read the result as the spec
//! (every structural problem at once, the rest still read), then compile and
//! check each part. Every problem is collected with the file that set its key
//! and its key path; the template loads only when there are none.
//!
//! Size: `Template::load` in its steps (read, merge, type, compile, check),
//! each a function; they share one problems collector.

use super::*;

/// The files of a template: the base, the optional override, and both merged.
struct Files<'a> {
    base: &'a TemplateSource,
    base_table: toml::Table,
    overlay: Option<(&'a TemplateSource, toml::Table, String)>,
    merged: toml::Table,
}

impl<'a> Files<'a> {
    fn read(
        base: &'a TemplateSource,
        overlay: Option<&'a TemplateSource>,
    ) -> Result<Self, TemplateErrors> {
        for src in std::iter::once(base).chain(overlay) {
            if src.text.len() > MAX_TEMPLATE_BYTES {
                return Err(TemplateErrors(vec![TemplateError {
                    file: src.name.clone(),
                    path: String::new(),
                    line: None,
                    message: format!("larger than {MAX_TEMPLATE_BYTES} bytes"),
                }]));
            }
        }
        let base_table = parse_table(base)?;
        let mut merged = base_table.clone();
        let overlay = match overlay {
            Some(ov) => {
                let mut t = parse_table(ov)?;
                let label = overlay_header(ov, &mut t)?;
                merge(&mut merged, &t);
                Some((ov, t, label))
            }
            None => None,
        };
        Ok(Files {
            base,
            base_table,
            overlay,
            merged,
        })
    }

    /// The file whose key a problem at `path` is about.
    fn file_for(&self, path: &str) -> String {
        match &self.overlay {
            Some((o, t, _)) if has_path(t, path) => o.name.clone(),
            _ => self.base.name.clone(),
        }
    }

    /// `base@1.2.0+acme@3#a1b2c3d4e5f6`.
    fn identity(&self, spec: &TemplateSpec) -> String {
        let base_version = format!(
            "{}@{}",
            spec.template.name,
            base_header_version(&self.base_table)
        );
        let hash = hash_json(spec);
        match &self.overlay {
            Some((_, _, label)) => format!("{base_version}+{label}#{}", &hash[..12]),
            None => format!("{base_version}#{}", &hash[..12]),
        }
    }
}

/// Problems found so far, each blamed on the file that set its key.
struct Problems<'a> {
    files: &'a Files<'a>,
    list: Vec<TemplateError>,
}

impl Problems<'_> {
    fn at(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        self.list.push(TemplateError {
            file: self.files.file_for(&path),
            path,
            line: None,
            message: message.into(),
        });
    }
}

impl Template {
    /// Loads a partner base and an optional customer override.
    pub fn load(
        base: &TemplateSource,
        overlay: Option<&TemplateSource>,
    ) -> Result<Template, TemplateErrors> {
        let files = Files::read(base, overlay)?;
        let (spec, structural) = read_spec(&files)?;
        let mut p = Problems {
            files: &files,
            list: structural,
        };
        let (currency, time_zone, bounds) = defaults(&spec, &mut p);
        for (name, map) in &spec.value_maps {
            for (k, v) in map {
                if let Err(m) = check_value(v) {
                    p.at(format!("value_maps.{}.{k:?}", key_segment(name)), m);
                }
            }
        }
        // Dimensions and tax apply to every record that becomes a document.
        let shared_vars = Vars::for_domains(&POSTABLE);
        let dimensions = dimensions(&spec, &shared_vars, &mut p);
        let tax = tax(&spec, &shared_vars, &mut p);
        let mut rules = BTreeMap::new();
        for (name, rule) in &spec.domains {
            if let Some(compiled) = compile_rule(&spec, name, rule, &mut p) {
                rules.insert(compiled.domain, compiled);
            }
        }
        shared_documents(&spec, &mut p);
        if !p.list.is_empty() {
            return Err(TemplateErrors(p.list));
        }
        Ok(Template {
            version: files.identity(&spec),
            currency: currency.expect("validated above"),
            time_zone: time_zone.expect("validated above"),
            bounds,
            rules,
            dimensions,
            tax,
            spec,
        })
    }
}

/// The merged files read as the spec. What serde refuses is reported key by
/// key; the template is then read without those keys, so that the checks
/// after this still run on the rest and every problem is reported at once.
fn read_spec(files: &Files<'_>) -> Result<(TemplateSpec, Vec<TemplateError>), TemplateErrors> {
    let merged = &files.merged;
    let e = match serde_path_to_error::deserialize(toml::Value::Table(merged.clone())) {
        Ok(spec) => return Ok((spec, Vec::new())),
        Err(e) => e,
    };
    let mut found = section_errors(merged);
    if found.is_empty() {
        found.push(Structural {
            path: e.path().to_string(),
            message: e.inner().to_string(),
            prune: Vec::new(),
        });
    }
    let mut rest = merged.clone();
    for f in &found {
        prune(&mut rest, &f.prune);
    }
    // Without a key a section needs (a domain's direction), leave out its
    // whole entry instead.
    if serde_path_to_error::deserialize::<_, TemplateSpec>(toml::Value::Table(rest.clone()))
        .is_err()
    {
        for f in &found {
            prune(&mut rest, &f.prune[..f.prune.len().min(2)]);
        }
    }
    let errors: Vec<TemplateError> = found
        .into_iter()
        .map(|f| TemplateError {
            file: files.file_for(&f.path),
            path: if f.path == "." { String::new() } else { f.path },
            line: None,
            message: f.message,
        })
        .collect();
    match serde_path_to_error::deserialize(toml::Value::Table(rest)) {
        Ok(spec) => Ok((spec, errors)),
        Err(_) => Err(TemplateErrors(errors)),
    }
}

/// `[defaults]` and `[bounds]`: the currency, the firm's time zone, the
/// plausibility bounds, the reference prefix and the payment terms.
fn defaults(
    spec: &TemplateSpec,
    p: &mut Problems<'_>,
) -> (Option<Currency>, Option<chrono_tz::Tz>, CompiledBounds) {
    let currency = match Currency::parse(&spec.defaults.currency) {
        Ok(c) => Some(c),
        Err(e) => {
            p.at("defaults.currency", e.to_string());
            None
        }
    };
    let time_zone = match spec.defaults.time_zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            p.at(
                "defaults.time_zone",
                format!(
                    "unknown time zone {:?}; use an IANA name such as \"Europe/Amsterdam\" or \"UTC\"",
                    spec.defaults.time_zone
                ),
            );
            None
        }
    };
    let mut bound = |key: &str, v: &str| match v.parse::<rust_decimal::Decimal>() {
        Ok(d) if d > rust_decimal::Decimal::ZERO => d,
        _ => {
            p.at(
                format!("bounds.{key}"),
                format!("must be a positive decimal written as a string, got {v:?}"),
            );
            rust_decimal::Decimal::ONE
        }
    };
    let bounds = CompiledBounds {
        max_hourly_rate: bound("max_hourly_rate", &spec.bounds.max_hourly_rate),
        max_amount: bound("max_amount", &spec.bounds.max_amount),
        max_days_ahead: spec.bounds.max_days_ahead,
        max_days_back: spec.bounds.max_days_back,
    };
    let prefix = &spec.defaults.reference_prefix;
    if !(1..=10).contains(&prefix.chars().count())
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        p.at(
            "defaults.reference_prefix",
            format!("must be 1-10 letters, digits, '-' or '_', got {prefix:?}"),
        );
    }
    if spec.defaults.payment_terms_days > 3650 {
        p.at("defaults.payment_terms_days", "at most 3650 days");
    }
    (currency, time_zone, bounds)
}

/// A value source (`from` + `map`, `value`, `default`), compiled and checked.
fn source(
    spec: &TemplateSpec,
    path: &str,
    src: &ValueSource,
    vars: &Vars,
    p: &mut Problems<'_>,
) -> CompiledSource {
    for (k, v) in [("value", &src.value), ("default", &src.default)] {
        if let Some(v) = v
            && let Err(m) = check_value(v)
        {
            p.at(format!("{path}.{k}"), m);
        }
    }
    let expr = match &src.from {
        Some(s) => match compile_checked(s, vars, Use::Text) {
            Ok(e) => Some(e),
            Err(m) => {
                p.at(format!("{path}.from"), m);
                None
            }
        },
        None => None,
    };
    if let Some(m) = &src.map
        && !spec.value_maps.contains_key(m)
    {
        p.at(
            format!("{path}.map"),
            format!("value map {m:?} is not defined under [value_maps]"),
        );
    }
    if src.from.is_none() && src.value.is_none() && src.default.is_none() {
        p.at(path, "needs `from`, `value` or `default`");
    }
    if src.from.is_some() && src.value.is_some() {
        p.at(path, "`from` and `value` are alternatives; give one");
    }
    CompiledSource {
        expr,
        map: src.map.clone(),
        default: src.default.clone(),
        value: src.value.clone(),
        path: path.to_string(),
    }
}

/// `[dimensions.*]`.
fn dimensions(spec: &TemplateSpec, vars: &Vars, p: &mut Problems<'_>) -> Vec<CompiledDimension> {
    let mut out = Vec::new();
    for (name, rule) in &spec.dimensions {
        let path = format!("dimensions.{}", key_segment(name));
        let Some(kind) = DimensionKind::parse(name) else {
            p.at(
                path,
                format!(
                    "unknown dimension; expected one of {}",
                    DimensionKind::ALL.map(|k| k.as_str()).join(", ")
                ),
            );
            continue;
        };
        if let Some(category) = &rule.erp_category
            && let Err(m) = check_value(category)
        {
            p.at(format!("{path}.erp_category"), m);
        }
        out.push(CompiledDimension {
            kind,
            source: source(spec, &path, &rule.source, vars, p),
            erp_category: rule.erp_category.clone(),
        });
    }
    out
}

/// `[tax]`.
fn tax(spec: &TemplateSpec, vars: &Vars, p: &mut Problems<'_>) -> CompiledSource {
    let t = &spec.tax;
    if t.source.from.is_some() || t.source.value.is_some() || t.source.default.is_some() {
        return source(spec, "tax", &t.source, vars, p);
    }
    if t.required {
        p.at("tax", "required = true needs `from`, `value` or `default`");
    }
    CompiledSource {
        expr: None,
        map: None,
        default: None,
        value: None,
        path: "tax".into(),
    }
}

/// One `[domains.<name>]` rule, compiled; `None` for an unknown domain.
fn compile_rule(
    spec: &TemplateSpec,
    name: &str,
    rule: &DomainRule,
    p: &mut Problems<'_>,
) -> Option<CompiledRule> {
    let path = format!("domains.{}", key_segment(name));
    let Some(domain) = Domain::parse(name) else {
        p.at(path, "unknown domain");
        return None;
    };
    if rule.direction == Direction::PsaToErp && !postable(domain) {
        p.at(
            format!("{path}.direction"),
            format!(
                "{name} cannot post to the ERP (no document mapping); use reference, erp_to_psa or none"
            ),
        );
    }
    summary(domain, name, &path, rule, p);
    let vars = Vars::for_domain(domain);
    let mut skip_when = Vec::new();
    for (i, s) in rule.skip_when.iter().enumerate() {
        match compile_checked(&s.when, &vars, Use::Condition) {
            Ok(e) => skip_when.push((e, s.reason.clone())),
            Err(m) => p.at(format!("{path}.skip_when[{i}].when"), m),
        }
        if s.reason.trim().is_empty() {
            p.at(
                format!("{path}.skip_when[{i}].reason"),
                "a skip needs a reason people can read",
            );
        }
    }
    let compile = |key: &str, s: &Option<ValueSource>, p: &mut Problems<'_>| {
        s.as_ref()
            .map(|s| source(spec, &format!("{path}.{key}"), s, &vars, p))
    };
    let item = compile("item", &rule.item, p);
    let account = compile("account", &rule.account, p);
    let rate = compile("rate", &rule.rate, p);
    if let Some(src) = &rule.rate {
        rates(spec, domain, &path, src, p);
    }
    let description = match &rule.description {
        Some(d) => match compile_checked(d, &vars, Use::Text) {
            Ok(e) => Some(e),
            Err(m) => {
                p.at(format!("{path}.description"), m);
                None
            }
        },
        None => None,
    };
    let mut required_dimensions = Vec::new();
    for (i, d) in rule.required_dimensions.iter().enumerate() {
        match DimensionKind::parse(d) {
            Some(k) if spec.dimensions.contains_key(d) => required_dimensions.push(k),
            Some(_) => p.at(
                format!("{path}.required_dimensions[{i}]"),
                format!(
                    "dimension {d:?} is required but [dimensions.{d}] does not say how to derive it"
                ),
            ),
            None => p.at(
                format!("{path}.required_dimensions[{i}]"),
                format!("unknown dimension {d:?}"),
            ),
        }
    }
    let invoice_status = match rule.invoice_status.as_deref() {
        None | Some("draft") => DocStatus::Draft,
        Some("authorised") => DocStatus::Authorised,
        Some(other) => {
            p.at(
                format!("{path}.invoice_status"),
                format!("expected \"draft\" or \"authorised\", got {other:?}"),
            );
            DocStatus::Draft
        }
    };
    if rule.timesheets {
        if domain != Domain::TimeEntries {
            p.at(
                format!("{path}.timesheets"),
                "only time entries become timesheet lines",
            );
        } else if spec.domains.get("projects").map(|p| p.direction) != Some(Direction::PsaToErp) {
            p.at(
                format!("{path}.timesheets"),
                "timesheet lines go on ERP projects: set [domains.projects] direction = \"psa_to_erp\"",
            );
        }
    }
    if rule.direction == Direction::PsaToErp
        && matches!(domain, Domain::TimeEntries | Domain::Expenses)
        && rule.item.is_none()
        && rule.account.is_none()
    {
        p.at(
            path.clone(),
            "lines need an `item` or an `account` to post to",
        );
    }
    Some(CompiledRule {
        domain,
        owner: rule.owner.unwrap_or_else(|| default_owner(domain)),
        spec: rule.clone(),
        skip_when,
        item,
        account,
        rate,
        description,
        required_dimensions,
        invoice_status,
    })
}

/// A rule's granularity against its `[summary]` table.
fn summary(domain: Domain, name: &str, path: &str, rule: &DomainRule, p: &mut Problems<'_>) {
    match (rule.granularity, &rule.summary) {
        (Granularity::Summary, None) => p.at(
            format!("{path}.summary"),
            "granularity = \"summary\" needs a [summary] table",
        ),
        (Granularity::Summary, Some(_)) if !summarisable(domain) => p.at(
            format!("{path}.granularity"),
            format!(
                "{name} cannot be summarised; only time_entries, expenses and billing_events can"
            ),
        ),
        (Granularity::PerRecord, Some(_)) => p.at(
            format!("{path}.summary"),
            "a [summary] table needs granularity = \"summary\"",
        ),
        _ => {}
    }
    if let Some(s) = &rule.summary {
        if let Err(m) = check_value(&s.document) {
            p.at(format!("{path}.summary.document"), m);
        }
        if s.group_by.is_empty() {
            p.at(
                format!("{path}.summary.group_by"),
                "must name at least one of \"project\", \"period\"",
            );
        }
        if s.coalesce_seconds > 900 {
            p.at(
                format!("{path}.summary.coalesce_seconds"),
                "at most 900 (the longest queue delay)",
            );
        }
    }
}

/// Every rate a rule's source can yield is a positive decimal: checked now,
/// not per record; and only time has an hourly rate.
fn rates(spec: &TemplateSpec, domain: Domain, path: &str, src: &ValueSource, p: &mut Problems<'_>) {
    let mut candidates: Vec<(String, String)> = Vec::new();
    for (k, v) in [("value", &src.value), ("default", &src.default)] {
        if let Some(v) = v {
            candidates.push((format!("{path}.rate.{k}"), v.clone()));
        }
    }
    if let Some((name, map)) = src
        .map
        .as_ref()
        .and_then(|m| spec.value_maps.get(m).map(|vm| (m, vm)))
    {
        for (k, v) in map {
            candidates.push((format!("value_maps.{name}.{k:?}"), v.clone()));
        }
    }
    for (at, v) in candidates {
        match v.parse::<rust_decimal::Decimal>() {
            Ok(d) if d > rust_decimal::Decimal::ZERO => {}
            _ => p.at(at, format!("a rate must be a positive decimal, got {v:?}")),
        }
    }
    if domain != Domain::TimeEntries {
        p.at(
            format!("{path}.rate"),
            "only time entries have an hourly rate",
        );
    }
}

/// Summaries that share a document must agree on how it is grouped.
fn shared_documents(spec: &TemplateSpec, p: &mut Problems<'_>) {
    let mut docs: BTreeMap<&str, (&str, &SummaryRule)> = BTreeMap::new();
    for (name, rule) in &spec.domains {
        if let Some(s) = &rule.summary {
            match docs.get(s.document.as_str()) {
                Some((other, o)) if o.group_by != s.group_by => p.at(
                    format!("domains.{name}.summary.group_by"),
                    format!(
                        "document {:?} is also built by {other} with a different group_by",
                        s.document
                    ),
                ),
                _ => {
                    docs.insert(&s.document, (name, s));
                }
            }
        }
    }
}
