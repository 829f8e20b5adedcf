//! Partner and customer configuration as data, rendered into one customer
//! stack's deployment: `infra/partners/<partner>/partner.toml` holds the
//! partner's branding, its service tiers (what each tier sets) and defaults;
//! `infra/partners/<partner>/customers/<customer>.toml` names the customer's
//! tier, region, account and connectors, and overrides tier values it names.
//! Every error names the file and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ferry_connectors::registry::{ErpConnection, PsaConnection};
use serde::{Deserialize, Serialize};

/// A configuration problem, with the file and key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(file: &Path, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        key: key.to_string(),
        problem: problem.into(),
    }
}

/// What a service tier sets. In a customer file every field is optional (an override).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierValues {
    /// Schedule for time entries and expenses (`rate(…)` or `cron(…)`).
    pub poll_frequent: Option<String>,
    /// Schedule for customers, projects, invoices and payments.
    pub poll_daily: Option<String>,
    /// Schedule of the dead-letter sweep.
    pub sweep: Option<String>,
    /// Schedule of the monthly reconciliation.
    pub reconcile: Option<String>,
    /// SLA: alarm when the oldest queued message is older than this.
    pub queue_age_alarm_seconds: Option<u32>,
    pub log_retention_days: Option<u32>,
    /// Where this tier's alarms go.
    pub alert_email: Option<String>,
    /// ERP writes in flight at once (Xero allows 5).
    pub post_concurrency: Option<u32>,
}

impl TierValues {
    /// `self`, with what `over` names replacing it.
    fn overridden_by(&self, over: &TierValues) -> TierValues {
        TierValues {
            poll_frequent: over
                .poll_frequent
                .clone()
                .or_else(|| self.poll_frequent.clone()),
            poll_daily: over.poll_daily.clone().or_else(|| self.poll_daily.clone()),
            sweep: over.sweep.clone().or_else(|| self.sweep.clone()),
            reconcile: over.reconcile.clone().or_else(|| self.reconcile.clone()),
            queue_age_alarm_seconds: over
                .queue_age_alarm_seconds
                .or(self.queue_age_alarm_seconds),
            log_retention_days: over.log_retention_days.or(self.log_retention_days),
            alert_email: over
                .alert_email
                .clone()
                .or_else(|| self.alert_email.clone()),
            post_concurrency: over.post_concurrency.or(self.post_concurrency),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    pub primary: String,
    pub accent: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSection {
    pub id: String,
    pub name: String,
    pub support_email: String,
    pub logo_url: String,
    pub colours: Branding,
    /// The partner's mapping template (relative to the repository).
    pub default_template: PathBuf,
    /// Defaults for its customers.
    pub default_tier: String,
    pub default_region: String,
    /// Whether the partner console's pages may say "Ferry" (off by default:
    /// customers see only the partner's brand).
    #[serde(default)]
    pub show_ferry: bool,
}

/// `partner.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerFile {
    pub partner: PartnerSection,
    pub tiers: BTreeMap<String, TierValues>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSection {
    pub id: String,
    pub name: String,
    pub tier: Option<String>,
    pub region: Option<String>,
    /// The AWS account the stack goes into (12 digits).
    pub account: String,
    /// The customer's mapping override, if any (relative to the repository).
    pub template_override: Option<PathBuf>,
}

/// `customers/<customer>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerFile {
    pub customer: CustomerSection,
    #[serde(default)]
    pub overrides: TierValues,
    /// The PSA connection, as in a tenant file (`[psa.connectwise]`).
    pub psa: toml::Table,
    /// The ERP connection, as in a tenant file (`[erp.xero]`).
    pub erp: toml::Table,
}

/// Everything one customer stack deploys with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub stack_name: String,
    pub partner: String,
    pub customer: String,
    pub tier: String,
    pub region: String,
    pub account: String,
    pub template: PathBuf,
    pub template_override: Option<PathBuf>,
    /// CloudFormation parameters of `infra/template.yaml`.
    pub parameters: BTreeMap<String, String>,
    /// The customer's display name and connections, for the tenant file.
    pub customer_name: String,
    pub psa: toml::Table,
    pub erp: toml::Table,
    /// The customer file (for errors about the connections).
    pub customer_file: PathBuf,
}

/// CloudWatch Logs retention values the template allows.
const RETENTIONS: [u32; 7] = [7, 14, 30, 60, 90, 180, 365];

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| err(path, "", format!("cannot read: {e}")))?;
    toml::from_str(&text).map_err(|e| err(path, "", e.to_string().trim().replace('\n', " ")))
}

fn slug(file: &Path, key: &str, v: &str) -> Result<(), ConfigError> {
    let ok = (2..=31).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !v.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(err(
            file,
            key,
            format!("{v:?} must be 2–31 lower-case letters, digits or dashes"),
        ))
    }
}

fn schedule(file: &Path, key: &str, v: &str) -> Result<(), ConfigError> {
    let inner = v
        .strip_prefix("rate(")
        .or_else(|| v.strip_prefix("cron("))
        .and_then(|s| s.strip_suffix(')'));
    match inner {
        Some(i) if !i.trim().is_empty() => Ok(()),
        _ => Err(err(
            file,
            key,
            format!("{v:?} is not an EventBridge schedule (rate(…) or cron(…))"),
        )),
    }
}

/// A partner's file, `infra/partners/<partner>/partner.toml`, as read (the
/// checks are `plan`'s, which every customer of the partner goes through).
pub fn partner_file(infra: &Path, partner: &str) -> Result<PartnerFile, ConfigError> {
    read(&infra.join("partners").join(partner).join("partner.toml"))
}

/// Loads and checks one customer's configuration under `infra`.
pub fn plan(infra: &Path, partner: &str, customer: &str) -> Result<Plan, ConfigError> {
    let pdir = infra.join("partners").join(partner);
    let pfile = pdir.join("partner.toml");
    let cfile = pdir.join("customers").join(format!("{customer}.toml"));
    let p: PartnerFile = read(&pfile)?;
    let c: CustomerFile = read(&cfile)?;
    if p.partner.id != partner {
        return Err(err(
            &pfile,
            "partner.id",
            format!("{:?} does not match its folder {partner:?}", p.partner.id),
        ));
    }
    if c.customer.id != customer {
        return Err(err(
            &cfile,
            "customer.id",
            format!(
                "{:?} does not match its file name {customer:?}",
                c.customer.id
            ),
        ));
    }
    slug(&pfile, "partner.id", &p.partner.id)?;
    slug(&cfile, "customer.id", &c.customer.id)?;
    if !p.partner.support_email.contains('@') {
        return Err(err(
            &pfile,
            "partner.support_email",
            format!("{:?} is not an email address", p.partner.support_email),
        ));
    }
    if !p.partner.logo_url.starts_with("https://") {
        return Err(err(&pfile, "partner.logo_url", "must be an https:// URL"));
    }
    for (key, v) in [
        ("partner.colours.primary", &p.partner.colours.primary),
        ("partner.colours.accent", &p.partner.colours.accent),
    ] {
        let hex = v
            .strip_prefix('#')
            .filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()));
        if hex.is_none() {
            return Err(err(&pfile, key, format!("{v:?} is not a #RRGGBB colour")));
        }
    }
    if !c.customer.account.len().eq(&12)
        || !c.customer.account.chars().all(|ch| ch.is_ascii_digit())
    {
        return Err(err(
            &cfile,
            "customer.account",
            format!("{:?} is not a 12-digit AWS account id", c.customer.account),
        ));
    }
    let refused = |(path, message): (String, String)| err(&cfile, &path, message);
    PsaConnection::read(&c.psa).map_err(refused)?;
    ErpConnection::read(&c.erp).map_err(refused)?;
    let tier = c
        .customer
        .tier
        .clone()
        .unwrap_or_else(|| p.partner.default_tier.clone());
    let base = p.tiers.get(&tier).ok_or_else(|| {
        let key = if c.customer.tier.is_some() {
            (&cfile, "customer.tier")
        } else {
            (&pfile, "partner.default_tier")
        };
        err(
            key.0,
            key.1,
            format!(
                "tier {tier:?} is not one of the partner's tiers ({})",
                p.tiers.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let v = base.overridden_by(&c.overrides);
    let tier_key = |k: &str| format!("tiers.{tier}.{k}");
    let need = |k: &str, o: Option<String>| {
        o.ok_or_else(|| {
            err(
                &pfile,
                &tier_key(k),
                "missing (neither the tier nor the customer sets it)",
            )
        })
    };
    let needn = |k: &str, o: Option<u32>| {
        o.ok_or_else(|| {
            err(
                &pfile,
                &tier_key(k),
                "missing (neither the tier nor the customer sets it)",
            )
        })
    };
    // Where a value came from decides which file an error names.
    let src = |over: bool| if over { &cfile } else { &pfile };
    let poll_frequent = need("poll_frequent", v.poll_frequent.clone())?;
    schedule(
        src(c.overrides.poll_frequent.is_some()),
        "poll_frequent",
        &poll_frequent,
    )?;
    let poll_daily = need("poll_daily", v.poll_daily.clone())?;
    schedule(
        src(c.overrides.poll_daily.is_some()),
        "poll_daily",
        &poll_daily,
    )?;
    let sweep = need("sweep", v.sweep.clone())?;
    schedule(src(c.overrides.sweep.is_some()), "sweep", &sweep)?;
    let reconcile = need("reconcile", v.reconcile.clone())?;
    schedule(
        src(c.overrides.reconcile.is_some()),
        "reconcile",
        &reconcile,
    )?;
    let age = needn("queue_age_alarm_seconds", v.queue_age_alarm_seconds)?;
    let retention = needn("log_retention_days", v.log_retention_days)?;
    if !RETENTIONS.contains(&retention) {
        return Err(err(
            src(c.overrides.log_retention_days.is_some()),
            "log_retention_days",
            format!("{retention} is not one of {RETENTIONS:?}"),
        ));
    }
    let email = need("alert_email", v.alert_email.clone())?;
    if !email.contains('@') {
        return Err(err(
            src(c.overrides.alert_email.is_some()),
            "alert_email",
            format!("{email:?} is not an email address"),
        ));
    }
    let concurrency = needn("post_concurrency", v.post_concurrency)?;
    if !(2..=5).contains(&concurrency) {
        return Err(err(
            src(c.overrides.post_concurrency.is_some()),
            "post_concurrency",
            format!(
                "{concurrency} is outside 2–5: Lambda needs at least 2 consumers, Xero allows 5 calls in flight"
            ),
        ));
    }
    if age < 300 {
        return Err(err(
            src(c.overrides.queue_age_alarm_seconds.is_some()),
            "queue_age_alarm_seconds",
            format!(
                "{age} s is shorter than the alarm's 5-minute period; it would fire on ordinary backlog"
            ),
        ));
    }
    let region = c
        .customer
        .region
        .clone()
        .unwrap_or_else(|| p.partner.default_region.clone());
    let parameters = BTreeMap::from([
        ("PartnerId".to_string(), p.partner.id.clone()),
        ("CustomerId".into(), c.customer.id.clone()),
        ("Tier".into(), tier.clone()),
        ("PollFrequentSchedule".into(), poll_frequent),
        ("PollDailySchedule".into(), poll_daily),
        ("SweepSchedule".into(), sweep),
        ("ReconcileSchedule".into(), reconcile),
        ("QueueAgeAlarmSeconds".into(), age.to_string()),
        ("LogRetentionDays".into(), retention.to_string()),
        ("AlertEmail".into(), email),
        ("PostConcurrency".into(), concurrency.to_string()),
        ("PartnerName".into(), p.partner.name.clone()),
        (
            "PartnerSupportEmail".into(),
            p.partner.support_email.clone(),
        ),
        ("PartnerLogoUrl".into(), p.partner.logo_url.clone()),
        ("CustomerName".into(), c.customer.name.clone()),
    ]);
    Ok(Plan {
        stack_name: format!("ferry-{}-{}", p.partner.id, c.customer.id),
        partner: p.partner.id,
        customer: c.customer.id,
        tier,
        region,
        account: c.customer.account,
        template: p.partner.default_template,
        template_override: c.customer.template_override,
        parameters,
        customer_name: c.customer.name,
        psa: c.psa,
        erp: c.erp,
        customer_file: cfile,
    })
}

/// Writes the functions' configuration bundle (a Lambda layer, at `/opt` at run
/// time) into `out`: `ferry/tenant.toml` and the mapping templates it names, then
/// loads it back exactly as a cold start does, so a deploy never ships a tenant
/// file the functions would refuse. Returns the tenant file's path.
pub fn render_bundle(plan: &Plan, repo: &Path, out: &Path) -> Result<PathBuf, ConfigError> {
    let dir = out.join("ferry");
    let io = |e: std::io::Error| err(out, "", format!("cannot write the bundle: {e}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io)?;
    }
    std::fs::create_dir_all(dir.join("templates")).map_err(io)?;
    let copy = |from: &Path, to: &str| -> Result<(), ConfigError> {
        std::fs::copy(repo.join(from), dir.join(to))
            .map(|_| ())
            .map_err(|e| {
                err(
                    &plan.customer_file,
                    "",
                    format!("template {}: {e}", from.display()),
                )
            })
    };
    copy(&plan.template, "templates/base.toml")?;
    let mut template = toml::Table::new();
    template.insert("base".into(), "templates/base.toml".into());
    if let Some(o) = &plan.template_override {
        copy(o, "templates/override.toml")?;
        template.insert("override".into(), "templates/override.toml".into());
    }
    let mut tenant = toml::Table::new();
    tenant.insert("id".into(), plan.customer.clone().into());
    tenant.insert("name".into(), plan.customer_name.clone().into());
    let mut file = toml::Table::new();
    file.insert("tenant".into(), tenant.into());
    file.insert("psa".into(), plan.psa.clone().into());
    file.insert("erp".into(), plan.erp.clone().into());
    file.insert("template".into(), template.into());
    let path = dir.join("tenant.toml");
    let text = format!(
        "# Rendered by `ferry deploy` from {}; do not edit here.\n{}",
        plan.customer_file.display(),
        toml::to_string(&file).map_err(|e| err(&plan.customer_file, "", e.to_string()))?
    );
    std::fs::write(&path, text).map_err(io)?;
    let (cfg, base) = ferry_connectors::tenant::TenantConfig::read(&path)
        .map_err(|e| err(&plan.customer_file, "psa/erp", e.to_string()))?;
    let template = cfg.load_template(&base).map_err(|e| {
        err(
            &plan.customer_file,
            "customer.template_override",
            e.to_string(),
        )
    })?;
    // What the functions check at cold start, checked before anything deploys.
    cfg.check(&template)
        .map_err(|e| err(&plan.customer_file, "psa/erp", e.to_string()))?;
    Ok(path)
}

impl Plan {
    /// Refuses credentials of another account than the customer's.
    pub fn check_account(&self, actual: &str) -> Result<(), String> {
        if actual == self.account {
            Ok(())
        } else {
            Err(format!(
                "the AWS credentials are for account {actual}, but {} deploys into {} (customer.account); \
                 switch credentials (AWS_PROFILE) before deploying",
                self.stack_name, self.account
            ))
        }
    }

    /// The `sam deploy` command line this plan runs, of the template `sam
    /// build` wrote into `build_dir`.
    pub fn sam_deploy_args(&self, build_dir: &Path) -> Vec<String> {
        let mut args = vec![
            "deploy".to_string(),
            "--template-file".into(),
            build_dir.join("template.yaml").display().to_string(),
            "--stack-name".into(),
            self.stack_name.clone(),
            "--region".into(),
            self.region.clone(),
            "--capabilities".into(),
            "CAPABILITY_IAM".into(),
            "--resolve-s3".into(),
            "--no-fail-on-empty-changeset".into(),
            "--parameter-overrides".into(),
        ];
        args.extend(self.parameters.iter().map(|(k, v)| format!("{k}={v}")));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_infra() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra")
    }

    #[test]
    fn every_example_customer_renders_with_its_tier_and_overrides() {
        let acme = plan(&repo_infra(), "northwind", "acme").expect("northwind/acme");
        assert_eq!(acme.stack_name, "ferry-northwind-acme");
        assert_eq!(acme.tier, "premium");
        assert_eq!(
            acme.parameters["PollFrequentSchedule"], "rate(5 minutes)",
            "the customer's override wins"
        );
        assert_eq!(
            acme.parameters["LogRetentionDays"], "365",
            "the rest comes from the tier"
        );
        let initech = plan(&repo_infra(), "northwind", "initech").expect("northwind/initech");
        assert_eq!(
            (initech.tier.as_str(), initech.region.as_str()),
            ("bronze", "eu-west-1"),
            "partner defaults"
        );
        for (p, c) in [("bluefin", "globex"), ("bluefin", "umbrella")] {
            let plan = plan(&repo_infra(), p, c).unwrap_or_else(|e| panic!("{p}/{c}: {e}"));
            assert_eq!(plan.parameters.len(), 15, "{p}/{c}");
        }
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    const PARTNER: &str = r##"
[partner]
id = "p1"
name = "P One"
support_email = "help@p1.example"
logo_url = "https://p1.example/logo.svg"
colours = { primary = "#000000", accent = "#ffffff" }
default_template = "templates/connectwise-xero.toml"
default_tier = "silver"
default_region = "us-east-1"

[tiers.silver]
poll_frequent = "rate(15 minutes)"
poll_daily = "rate(6 hours)"
sweep = "rate(15 minutes)"
reconcile = "cron(0 6 2 * ? *)"
queue_age_alarm_seconds = 3600
log_retention_days = 30
alert_email = "alerts@p1.example"
post_concurrency = 2
"##;

    const CONNECTIONS: &str = "[psa.connectwise]\nbase_url = \"https://cw.example/v4_6_release/apis/3.0\"\ncompany_id = \"c1\"\nhome_currency = \"USD\"\nkey_url_origins = [\"https://cw.example\"]\n\n[erp.xero]\ntenant_id = \"org-1\"\n";

    fn customer(extra: &str) -> String {
        format!(
            "[customer]\nid = \"c1\"\nname = \"C\"\naccount = \"123456789012\"\n{extra}\n{CONNECTIONS}"
        )
    }

    fn problem(partner: &str, customer_text: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "partners/p1/partner.toml", partner);
        write(dir.path(), "partners/p1/customers/c1.toml", customer_text);
        plan(dir.path(), "p1", "c1")
            .expect_err("invalid")
            .to_string()
    }

    #[test]
    fn every_example_customer_bundles_a_tenant_file_the_functions_load() {
        let repo = repo_infra().join("..");
        let partners = repo_infra().join("partners");
        for f in std::fs::read_dir(&partners).expect("partners") {
            let partner = f.expect("entry").file_name().to_string_lossy().into_owned();
            for c in
                std::fs::read_dir(partners.join(&partner).join("customers")).expect("customers")
            {
                let path = c.expect("entry").path();
                let customer = path
                    .file_stem()
                    .expect("stem")
                    .to_string_lossy()
                    .into_owned();
                let plan = plan(&repo_infra(), &partner, &customer).expect("plan");
                let out = tempfile::tempdir().expect("tempdir");
                let tenant = render_bundle(&plan, &repo, out.path())
                    .unwrap_or_else(|e| panic!("{partner}/{customer}: {e}"));
                let (cfg, _) =
                    ferry_connectors::tenant::TenantConfig::read(&tenant).expect("tenant file");
                assert_eq!(cfg.tenant.id.as_str(), customer);
                assert_eq!(
                    out.path().join("ferry/templates/override.toml").exists(),
                    plan.template_override.is_some(),
                    "{partner}/{customer}: the override ships exactly when the customer has one"
                );
            }
        }
    }

    #[test]
    fn connection_settings_the_connector_cannot_use_are_refused_in_the_plan() {
        for (from, to, says) in [
            (
                "home_currency = \"USD\"\n",
                "",
                "missing field `home_currency`",
            ),
            (
                "home_currency = \"USD\"",
                "home_currency = \"XYZ\"",
                "home_currency",
            ),
            (
                "tenant_id = \"org-1\"",
                "tenant_id = \"\"",
                "tenant_id: must not be empty",
            ),
            (
                "tenant_id = \"org-1\"",
                "tenant_id = \"o\"\nbatch_size = 0",
                "batch_size: 0 is outside 1..=100",
            ),
        ] {
            let e = problem(PARTNER, &customer("").replace(from, to));
            assert!(e.contains("c1.toml") && e.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn a_bundle_the_functions_would_refuse_is_not_rendered() {
        // Valid connection tables, but a template written for other connectors:
        // the functions would refuse it at cold start, so the deploy does now.
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "partners/p1/partner.toml", PARTNER);
        let text = customer("").replace(
            "[erp.xero]\ntenant_id = \"org-1\"\n",
            "[erp.tryton]\nbase_url = \"https://erp.example\"\ndatabase = \"d\"\n",
        );
        write(dir.path(), "partners/p1/customers/c1.toml", &text);
        let plan = plan(dir.path(), "p1", "c1").expect("the tables themselves are valid");
        let repo = repo_infra().join("..");
        let e = render_bundle(&plan, &repo, &dir.path().join("out"))
            .expect_err("the template does not fit")
            .to_string();
        assert!(
            e.contains("c1.toml: psa/erp")
                && e.contains("template.erp is \"xero\", but this tenant's erp is \"tryton\""),
            "{e}"
        );
    }

    #[test]
    fn a_deploy_refuses_credentials_of_another_account() {
        let acme = plan(&repo_infra(), "northwind", "acme").expect("plan");
        assert!(acme.check_account("111122223333").is_ok());
        let e = acme
            .check_account("999988887777")
            .expect_err("wrong account");
        assert!(
            e.contains("999988887777")
                && e.contains("111122223333")
                && e.contains("customer.account"),
            "{e}"
        );
    }

    #[test]
    fn invalid_or_contradictory_configuration_names_the_file_and_key() {
        let e = problem(PARTNER, &customer("tier = \"gold\"\n"));
        assert!(
            e.contains(
                "c1.toml: customer.tier: tier \"gold\" is not one of the partner's tiers (silver)"
            ),
            "{e}"
        );
        let e = problem(PARTNER, &customer("[overrides]\npost_concurrency = 9\n"));
        assert!(
            e.contains("c1.toml: post_concurrency: 9 is outside 2–5"),
            "{e}"
        );
        let e = problem(
            PARTNER,
            &customer("[overrides]\npoll_daily = \"every day\"\n"),
        );
        assert!(
            e.contains("c1.toml: poll_daily: \"every day\" is not an EventBridge schedule"),
            "{e}"
        );
        let e = problem(
            PARTNER,
            &customer("[overrides]\npoll_dayly = \"rate(1 day)\"\n"),
        );
        assert!(
            e.contains("c1.toml") && e.contains("poll_dayly"),
            "an unknown key is named: {e}"
        );
        let e = problem(
            &PARTNER.replace("log_retention_days = 30", "log_retention_days = 31"),
            &customer(""),
        );
        assert!(
            e.contains("partner.toml: log_retention_days: 31 is not one of"),
            "{e}"
        );
        let e = problem(
            &PARTNER.replace("queue_age_alarm_seconds = 3600\n", ""),
            &customer(""),
        );
        assert!(
            e.contains("partner.toml: tiers.silver.queue_age_alarm_seconds: missing"),
            "{e}"
        );
        let e = problem(&PARTNER.replace("#ffffff", "white"), &customer(""));
        assert!(
            e.contains("partner.toml: partner.colours.accent: \"white\" is not a #RRGGBB colour"),
            "{e}"
        );
        let e = problem(PARTNER, &customer("").replace("123456789012", "1234"));
        assert!(
            e.contains("customer.account: \"1234\" is not a 12-digit AWS account id"),
            "{e}"
        );
        let e = problem(PARTNER, &customer("").replace("[erp.xero]", "[erp.sage]"));
        let known = ferry_connectors::registry::names(ferry_connectors::registry::Side::Erp);
        assert!(
            e.contains(&format!(
                "c1.toml: erp.sage: not an ERP connector Ferry has ({})",
                known.join(", ")
            )),
            "{e}"
        );
    }
}
