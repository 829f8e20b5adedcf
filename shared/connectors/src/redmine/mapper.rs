//! Pure conversions from Redmine records to the canonical model.
//!
//! Redmine has no customers: the top-level project a project sits under stands
//! for the customer (`ferry_customer`, added by the connector). It has no rates
//! either (the template supplies them) and no approval workflow (an optional
//! boolean custom field stands for it).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use ferry_canon::{
    Account, ActiveStatus, ApprovalStatus, BillingType, CanonicalRecord, Currency, Dimensions,
    Domain, Phase, Project, ProjectStatus, RecordMeta, Resource, SourceRef, SystemId, Task,
    TenantId, TimeEntry,
};
use ferry_core::MappingError;
use ferry_core::ports::SourceRecord;
use rust_decimal::RoundingStrategy;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::config::RedmineConfig;
use super::raw;

/// Hours keep the two decimal places Redmine shows (it stores floats).
pub const HOUR_DECIMALS: u32 = 2;

/// What mapping needs besides the record.
pub struct MapContext<'a> {
    pub tenant: &'a TenantId,
    pub system: &'a SystemId,
    pub home_currency: Currency,
    pub cfg: &'a RedmineConfig,
}

pub use crate::psa::instant;

fn meta(
    cx: &MapContext<'_>,
    id: i64,
    updated_on: &str,
    deleted: bool,
) -> Result<RecordMeta, MappingError> {
    let at = instant(updated_on, "updated_on")?;
    Ok(crate::psa::meta(cx.tenant, cx.system, id, at, deleted))
}

fn parse<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T, MappingError> {
    crate::psa::parse(v, what, "Redmine")
}

fn named(cx: &MapContext<'_>, n: &raw::Named) -> SourceRef {
    crate::psa::named(cx.system, n)
}

fn custom<'a>(fields: &'a [raw::CustomField], name: &str) -> Option<&'a raw::CustomField> {
    fields.iter().find(|f| f.name == name)
}

/// A boolean custom field: `"1"` yes, `"0"` no, empty when never set.
fn flag(fields: &[raw::CustomField], name: &str) -> Result<Option<bool>, MappingError> {
    let field = format!("custom_fields.{name}");
    match custom(fields, name).map(raw::CustomField::text).as_deref() {
        None | Some("") => Ok(None),
        Some("1") => Ok(Some(true)),
        Some("0") => Ok(Some(false)),
        Some(other) => Err(MappingError::new(field, "must be 1 or 0").with_value(other)),
    }
}

/// The top-level project above `id`, following `parent` links (`None` for a top-level project).
pub fn root_of(id: i64, parents: &HashMap<i64, (Option<i64>, String)>) -> Option<raw::Named> {
    let mut at = id;
    let mut seen = 0;
    while let Some((Some(parent), _)) = parents.get(&at) {
        at = *parent;
        seen += 1;
        if seen > 64 {
            return None;
        }
    }
    (at != id).then(|| raw::Named {
        id: at,
        name: parents.get(&at).map(|(_, n)| n.clone()),
    })
}

/// Maps any Redmine record to its canonical form.
pub fn to_canonical(
    cx: &MapContext<'_>,
    rec: &SourceRecord,
) -> Result<CanonicalRecord, MappingError> {
    if let Some(c) = crate::tombstone::read(rec) {
        return c;
    }
    let deleted = rec.deleted;
    match rec.domain {
        Domain::Customers => {
            customer(cx, &parse(&rec.raw, "project")?, deleted).map(CanonicalRecord::Customers)
        }
        Domain::Projects => {
            project(cx, &parse(&rec.raw, "project")?, deleted).map(CanonicalRecord::Projects)
        }
        Domain::Resources => {
            user(cx, &parse(&rec.raw, "user")?, deleted).map(CanonicalRecord::Resources)
        }
        Domain::TimeEntries => time_entry(cx, &parse(&rec.raw, "time entry")?, deleted)
            .map(CanonicalRecord::TimeEntries),
        other => Err(MappingError::new(
            "domain",
            format!("Redmine has no {other}"),
        )),
    }
}

fn active(status: Option<i64>) -> ActiveStatus {
    match status {
        Some(1) | None => ActiveStatus::Active,
        _ => ActiveStatus::Inactive,
    }
}

/// A top-level project → the customer it stands for.
pub fn customer(
    cx: &MapContext<'_>,
    p: &raw::Project,
    deleted: bool,
) -> Result<Account, MappingError> {
    if p.name.trim().is_empty() {
        return Err(MappingError::new("name", "must not be empty"));
    }
    Ok(Account {
        meta: meta(cx, p.id, &p.updated_on, deleted)?,
        name: p.name.clone(),
        code: p.identifier.clone(),
        status: active(p.status),
        currency: Some(cx.home_currency),
        tax_code: None,
        billing_address: None,
        email: None,
        phone: None,
        website: None,
        payment_terms_days: None,
        dimensions: Dimensions::default(),
    })
}

/// A project. Its customer is its top-level project (itself when it has no parent).
pub fn project(
    cx: &MapContext<'_>,
    p: &raw::Project,
    deleted: bool,
) -> Result<Project, MappingError> {
    let account = match (&p.parent, &p.ferry_customer) {
        (None, _) => raw::Named {
            id: p.id,
            name: Some(p.name.clone()),
        },
        (Some(_), Some(root)) => root.clone(),
        (Some(_), None) => {
            return Err(MappingError::new(
                "parent",
                "top-level project (the customer) could not be resolved",
            ));
        }
    };
    let custom_fields: BTreeMap<String, String> = p
        .custom_fields
        .iter()
        .map(|f| (f.name.clone(), f.text()))
        .collect();
    let tasks: Vec<Task> = p
        .ferry_issues
        .iter()
        .map(|i| Task {
            id: i.id.to_string(),
            name: i.subject.clone(),
            billable: true,
        })
        .collect();
    let phases = if tasks.is_empty() {
        Vec::new()
    } else {
        vec![Phase {
            id: "issues".into(),
            name: "Issues".into(),
            tasks,
        }]
    };
    Ok(Project {
        meta: meta(
            cx,
            p.id,
            p.ferry_updated_on.as_deref().unwrap_or(&p.updated_on),
            deleted,
        )?,
        name: p.name.clone(),
        code: p.identifier.clone(),
        account: named(cx, &account),
        billing_type: BillingType::TimeAndMaterials,
        status: match p.status {
            Some(1) | None => ProjectStatus::Open,
            _ => ProjectStatus::Closed,
        },
        currency: cx.home_currency,
        budget: None,
        start: None,
        end: None,
        manager: None,
        dimensions: Dimensions::default(),
        phases,
        milestones: Vec::new(),
        custom_fields,
    })
}

/// A user → a resource.
pub fn user(cx: &MapContext<'_>, u: &raw::User, deleted: bool) -> Result<Resource, MappingError> {
    let name = [&u.firstname, &u.lastname]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let name = if name.is_empty() {
        u.login.clone().unwrap_or_default()
    } else {
        name
    };
    Ok(Resource {
        meta: meta(cx, u.id, &u.updated_on, deleted)?,
        name,
        email: u.mail.clone(),
        default_role: None,
        cost_rate: None,
        bill_rate: None,
        status: match u.status {
            Some(3) => ActiveStatus::Inactive,
            _ => ActiveStatus::Active,
        },
        dimensions: Dimensions::default(),
    })
}

/// A time entry. Billable and approved come from the configured custom fields.
pub fn time_entry(
    cx: &MapContext<'_>,
    t: &raw::TimeEntry,
    deleted: bool,
) -> Result<TimeEntry, MappingError> {
    let date = NaiveDate::parse_from_str(&t.spent_on, "%Y-%m-%d").map_err(|_| {
        MappingError::new("spent_on", "must be a date (YYYY-MM-DD)").with_value(&t.spent_on)
    })?;
    let billable = match &cx.cfg.billable_field {
        None => true,
        Some(name) => flag(&t.custom_fields, name)?.ok_or_else(|| {
            MappingError::new(
                format!("custom_fields.{name}"),
                "is not set (tick yes or no in Redmine)",
            )
        })?,
    };
    let approval = match &cx.cfg.approved_field {
        None => ApprovalStatus::Approved,
        Some(name) => match flag(&t.custom_fields, name)? {
            Some(true) => ApprovalStatus::Approved,
            _ => ApprovalStatus::Submitted,
        },
    };
    Ok(TimeEntry {
        meta: meta(cx, t.id, &t.updated_on, deleted)?,
        resource: named(cx, &t.user),
        project: Some(named(cx, &t.project)),
        task: t.issue.as_ref().map(|i| named(cx, i)),
        account: None,
        role: None,
        work_type: t.activity.as_ref().and_then(|a| a.name.clone()),
        // Redmine's spent_on is already the day the person logged it for.
        date,
        started_at: None,
        hours: t
            .hours
            .round_dp_with_strategy(HOUR_DECIMALS, RoundingStrategy::MidpointAwayFromZero),
        billable,
        approval,
        bill_rate: None,
        cost_rate: None,
        notes: t.comments.clone().filter(|c| !c.is_empty()),
        invoice: None,
        dimensions: Dimensions::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> RedmineConfig {
        RedmineConfig {
            base_url: "http://redmine".into(),
            home_currency: "USD".into(),
            billable_field: Some("Billable".into()),
            approved_field: Some("Approved".into()),
            page_size: crate::redmine::client::PAGE,
            timeout_seconds: 5,
        }
    }

    fn parts() -> (TenantId, SystemId, RedmineConfig) {
        (
            TenantId::parse("t").unwrap(),
            SystemId::parse("redmine").unwrap(),
            cfg(),
        )
    }

    fn context<'a>(
        tenant: &'a TenantId,
        system: &'a SystemId,
        cfg: &'a RedmineConfig,
    ) -> MapContext<'a> {
        MapContext {
            tenant,
            system,
            home_currency: Currency::parse("USD").unwrap(),
            cfg,
        }
    }

    fn entry(billable: &str, approved: Option<&str>, hours: &str) -> raw::TimeEntry {
        let mut fields = vec![json!({"id": 1, "name": "Billable", "value": billable})];
        if let Some(a) = approved {
            fields.push(json!({"id": 2, "name": "Approved", "value": a}));
        }
        serde_json::from_str(&format!(
            r#"{{"id": 7, "project": {{"id": 2, "name": "Acme Web"}}, "user": {{"id": 5, "name": "Jane Doe"}},
                "activity": {{"id": 9, "name": "Development"}}, "hours": {hours}, "spent_on": "2026-10-05",
                "updated_on": "2026-11-25T16:36:32Z", "custom_fields": {}}}"#,
            serde_json::Value::Array(fields)
        ))
        .unwrap()
    }

    #[test]
    fn billable_and_approval_come_from_the_custom_fields_and_hours_keep_two_decimals() {
        let (tenant, system, c) = parts();
        let cx = context(&tenant, &system, &c);
        let t = time_entry(&cx, &entry("1", Some("1"), "1.3333333333333333"), false).unwrap();
        assert!(t.billable);
        assert_eq!(t.approval, ApprovalStatus::Approved);
        assert_eq!(t.hours.to_string(), "1.33");
        assert_eq!(t.work_type.as_deref(), Some("Development"));
        let t = time_entry(&cx, &entry("0", None, "2.5"), false).unwrap();
        assert!(!t.billable);
        assert_eq!(
            t.approval,
            ApprovalStatus::Submitted,
            "never ticked is not approved"
        );
        let err = time_entry(&cx, &entry("", Some("1"), "2"), false).unwrap_err();
        assert!(err.to_string().contains("custom_fields.Billable"), "{err}");
        let err = time_entry(&cx, &entry("maybe", Some("1"), "2"), false).unwrap_err();
        assert!(err.to_string().contains("must be 1 or 0"), "{err}");
    }

    #[test]
    fn a_projects_issues_are_its_tasks_and_its_version_covers_them() {
        let (tenant, system, c) = parts();
        let cx = context(&tenant, &system, &c);
        let raw: raw::Project = serde_json::from_value(json!({
            "id": 2, "name": "Acme Web", "identifier": "acme-web", "status": 1,
            "parent": {"id": 1, "name": "Acme"}, "ferry_customer": {"id": 1, "name": "Acme"},
            "updated_on": "2026-11-01T10:00:00Z", "ferry_updated_on": "2026-11-20T08:30:00Z",
            "ferry_issues": [{"id": 41, "subject": "Homepage redesign", "updated_on": "2026-11-20T08:30:00Z"}],
        }))
        .unwrap();
        let p = project(&cx, &raw, false).unwrap();
        assert_eq!(p.account.id, "1");
        assert_eq!(p.phases[0].tasks[0].id, "41");
        assert_eq!(p.phases[0].tasks[0].name, "Homepage redesign");
        assert_eq!(
            p.meta.source_version.updated_at.to_rfc3339(),
            "2026-11-20T08:30:00+00:00",
            "a new or renamed issue is a new version of its project"
        );
    }

    #[test]
    fn a_projects_customer_is_its_top_level_ancestor() {
        let parents: HashMap<i64, (Option<i64>, String)> = [
            (1, (None, "Acme".to_string())),
            (2, (Some(1), "Acme Web".to_string())),
            (3, (Some(2), "Acme Web Phase 2".to_string())),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            root_of(3, &parents).map(|n| (n.id, n.name)),
            Some((1, Some("Acme".into())))
        );
        assert_eq!(root_of(2, &parents).map(|n| n.id), Some(1));
        assert!(
            root_of(1, &parents).is_none(),
            "a top-level project is its own customer"
        );
    }
}
