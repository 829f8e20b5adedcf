//! Template coverage: the values the PSA actually uses that no value map of the
//! template covers. A template can be valid and still leave a work role, an
//! expense type or a tax code unmapped; those records would become exceptions
//! at sync. `ferry template validate -t tenant.toml` runs this against the
//! tenant's PSA before the first sync, so they are mapped first.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ferry_canon::Domain;
use serde::Serialize;

use crate::ReasonCode;
use crate::deps::{Deps, TenantContext};
use crate::error::{ConnectorError, PortError};
use crate::gate::Patience;
use crate::mapping;
use crate::template::{CompiledSource, Direction, Template};
use crate::usecases::related::{RelatedError, RelatedReader};

/// A PSA value that a value map does not cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmapped {
    /// `value_maps.<name>`.
    pub map: String,
    /// Where the template reads it (`domains.time_entries.item`).
    pub used_by: String,
    pub value: String,
    /// How many records carry it, and one of them.
    pub records: usize,
    pub example: String,
}

/// What was read, and what no map covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub records_read: BTreeMap<String, usize>,
    pub unmapped: Vec<Unmapped>,
}

/// Why coverage could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("reading a vendor: {0}")]
    Vendor(#[from] ConnectorError),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl From<RelatedError> for CoverageError {
    fn from(e: RelatedError) -> Self {
        match e {
            RelatedError::Vendor(v) => CoverageError::Vendor(v),
            RelatedError::Port(p) => CoverageError::Port(p),
        }
    }
}

/// Most customers read (they are read from the beginning, not by period).
const MAX_CUSTOMERS: usize = 10_000;

/// The value-map sources that apply to a domain's records, with their key path.
fn mapped_sources(template: &Template, domain: Domain) -> Vec<&CompiledSource> {
    let mut out = Vec::new();
    if let Some(rule) = template.rule(domain) {
        out.extend(
            [&rule.item, &rule.account, &rule.rate]
                .into_iter()
                .flatten(),
        );
    }
    // Tax applies to customers and to every line and invoice; dimensions to lines and invoices.
    out.push(&template.tax);
    if domain != Domain::Customers {
        out.extend(template.dimensions.iter().map(|d| &d.source));
    }
    out.retain(|s| s.map.is_some() && s.expr.is_some() && s.value.is_none());
    out
}

/// Reads the tenant's customers and the records dated in `[from, to]` of every
/// domain that posts, and lists the values their templates' value maps lack
/// (records the template's filters skip do not count).
pub async fn unmapped_values(
    deps: &Deps,
    ctx: &TenantContext,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Coverage, CoverageError> {
    let template = &ctx.template;
    let mut patience = Patience::new(deps.settings.reconcile_budget_wait);
    let mut reader = RelatedReader::new(deps, ctx);
    let mut found: BTreeMap<(String, String, String), (usize, String)> = BTreeMap::new();
    let mut coverage = Coverage::default();
    for domain in [
        Domain::Customers,
        Domain::TimeEntries,
        Domain::Expenses,
        Domain::BillingEvents,
        Domain::Invoices,
    ] {
        let Some(rule) = template.rule(domain) else {
            continue;
        };
        if rule.spec.direction != Direction::PsaToErp {
            continue;
        }
        let sources = mapped_sources(template, domain);
        if sources.is_empty() {
            continue;
        }
        let records = if domain == Domain::Customers {
            read_all(ctx, domain, &mut patience).await?
        } else {
            patience
                .call("reading PSA records", || {
                    ctx.psa.list_period(domain, from, to)
                })
                .await?
        };
        *coverage.records_read.entry(domain.to_string()).or_default() += records.len();
        for rec in records {
            let Ok(canon) = ctx.canonical(&rec) else {
                continue;
            };
            if canon.meta().deleted {
                continue;
            }
            let related = reader.related(&canon, &mut patience).await?;
            let scope = related.scope(&canon);
            if !matches!(mapping::gate(rule, &canon, &scope), Ok(None)) {
                continue;
            }
            let key = crate::keys::RecordKey::new(canon.domain(), &canon.meta().source);
            for src in &sources {
                if let Err(v) = mapping::resolve(template, src, &scope, rule.owner)
                    && v.reason == ReasonCode::UnmappedValue
                    && let (Some(map), Some(expr)) = (&src.map, &src.expr)
                    && let Ok(Some(value)) = scope.text(expr)
                {
                    let e = found
                        .entry((format!("value_maps.{map}"), src.path.clone(), value))
                        .or_insert((0, key.to_string()));
                    e.0 += 1;
                }
            }
        }
    }
    coverage.unmapped = found
        .into_iter()
        .map(|((map, used_by, value), (records, example))| Unmapped {
            map,
            used_by,
            value,
            records,
            example,
        })
        .collect();
    Ok(coverage)
}

/// Every record of a domain, from the beginning (customers).
async fn read_all(
    ctx: &TenantContext,
    domain: Domain,
    patience: &mut Patience,
) -> Result<Vec<crate::ports::SourceRecord>, CoverageError> {
    let mut out: Vec<crate::ports::SourceRecord> = Vec::new();
    let mut after: Option<crate::ports::Cursor> = None;
    // Read to an empty page: a short page is not the end for every PSA.
    while out.len() < MAX_CUSTOMERS {
        let page = patience
            .call("reading PSA records", || {
                ctx.psa.changes(domain, after.as_ref(), 500)
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(crate::ports::Cursor::new(
            last.version.updated_at,
            last.id.clone(),
        ));
        out.extend(page);
    }
    Ok(out)
}
