//! The demo firm: a realistic professional-services firm (about 600 people,
//! dozens of customers, over a hundred projects, a month of time and expenses),
//! generated deterministically from a seed, with some unapproved entries and a
//! few bad records whose expected fate is listed in [`DemoFirm::bad`].
//!
//! Size: `generate` is one long function on purpose: every record draws from
//! one seeded generator in a fixed order, so a seed is always the same firm;
//! pieces would have to thread that state and order through each other.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::connectwise::{CwSim, Kind};
use crate::num;
use crate::xero::XeroSimConfig;

/// Work roles: name, bill rate, the ERP item code the partner template maps it to.
pub const ROLES: [(&str, &str, &str); 8] = [
    ("Partner", "325.00", "CONS-PTR"),
    ("Principal Consultant", "250.00", "CONS-PRN"),
    ("Senior Consultant", "187.50", "CONS-SR"),
    ("Consultant", "145.00", "CONS"),
    ("Analyst", "110.00", "CONS-AN"),
    ("Project Manager", "175.00", "PM"),
    ("Developer", "160.00", "DEV"),
    ("Designer", "135.00", "DES"),
];

/// Departments (ConnectWise identifier, name); Xero tracking options use the identifier.
pub const DEPARTMENTS: [(&str, &str); 4] = [
    ("CONS", "Consulting"),
    ("ENG", "Engineering"),
    ("DES", "Design"),
    ("ADV", "Advisory"),
];

/// Expense types; all map to the reimbursable-expenses account.
pub const EXPENSE_TYPES: [&str; 5] = ["Airfare", "Lodging", "Meals", "Mileage", "Ground Transport"];

/// Sales tax on taxable customers' invoices, as both systems configure it.
pub const SALES_TAX_PERCENT: &str = "8.875";

const FIRST: [&str; 30] = [
    "Ava", "Ben", "Chloe", "Daniel", "Emma", "Farid", "Grace", "Hiro", "Isla", "Jonas", "Kavya",
    "Liam", "Maya", "Noah", "Olivia", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor",
    "Wen", "Xavier", "Yara", "Zane", "Amir", "Beatriz", "Chen", "Dara",
];
const LAST: [&str; 20] = [
    "Adams", "Baker", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
    "Khan", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Schmidt", "Tanaka",
    "Walsh",
];
const COMPANY_STEMS: [&str; 40] = [
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Acme",
    "Gringotts",
    "Oscorp",
    "Nakatomi",
    "Monarch",
    "Aperture",
    "Black Mesa",
    "Dunder",
    "Pied Piper",
    "Massive Dynamic",
    "Prestige",
    "Sterling",
    "Bluth",
    "Krusty",
    "Duff",
    "Vehement",
    "Zorg",
    "Sirius",
    "Yoyodyne",
    "Ollivander",
    "Virtucon",
    "Genco",
    "Rekall",
    "Buy n Large",
    "Planet Express",
    "Weyland",
    "InGen",
    "Abstergo",
    "Encom",
];

/// A record that should not post, and what should happen to it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub kind: Kind,
    pub id: i64,
    /// The exception reason code Ferry should raise.
    pub expect_reason: &'static str,
    pub what: String,
    /// The ERP rule that makes the record bad, when it is the ERP's to refuse
    /// (an ERP without that rule takes it).
    pub erp_rule: Option<ErpRule>,
}

/// A rule some ERPs enforce and others do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErpRule {
    /// Two customers may not share a name (Xero, NetSuite; Business Central allows it).
    UniqueCustomerNames,
}

impl BadRecord {
    /// Ferry's key for the record (`<domain>/connectwise:<id>`).
    pub fn record_key(&self) -> String {
        let domain = match self.kind {
            Kind::Company => "customers",
            Kind::Project => "projects",
            Kind::Time => "time_entries",
            Kind::Expense => "expenses",
            Kind::Invoice => "invoices",
        };
        format!("{domain}/connectwise:{}", self.id)
    }
}

/// Everything the demo seeds.
#[derive(Debug, Clone)]
pub struct DemoFirm {
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub lock_date: NaiveDate,
    pub members: usize,
    pub companies: Vec<Value>,
    pub projects: Vec<Value>,
    pub time: Vec<Value>,
    pub expenses: Vec<Value>,
    pub invoices: Vec<Value>,
    /// Records created in the PSA after the first sync (with callbacks).
    pub late: Vec<(Kind, Value)>,
    pub bad: Vec<BadRecord>,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub seed: u64,
    pub members: usize,
    pub companies: usize,
    pub projects: usize,
    /// First day of the month to generate.
    pub month: NaiveDate,
}

impl DemoSpec {
    /// The default demo: the previous calendar month of `today`.
    pub fn for_today(today: NaiveDate) -> DemoSpec {
        let first = today.with_day(1).expect("day 1") - Months::new(1);
        DemoSpec {
            seed: 20261125,
            members: 600,
            companies: 40,
            projects: 120,
            month: first,
        }
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("valid decimal")
}

fn weekdays(start: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
    start
        .iter_days()
        .take_while(|x| *x <= end)
        .filter(|x| !matches!(x.weekday(), Weekday::Sat | Weekday::Sun))
        .collect()
}

fn stamp(date: NaiveDate, hour: u32) -> String {
    format!("{date}T{hour:02}:00:00Z")
}

fn cref(id: i64, identifier: &str, name: &str) -> Value {
    json!({ "id": id, "identifier": identifier, "name": name })
}

/// Generates the firm.
pub fn generate(spec: &DemoSpec) -> DemoFirm {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let start = spec.month;
    let end = start + Months::new(1) - Days::new(1);
    let lock = start - Days::new(1);
    let days = weekdays(start, end);
    let mut bad = Vec::new();

    // Customers: most in USD, a few in EUR; a mix of taxable and exempt.
    let mut companies = Vec::new();
    for i in 0..spec.companies {
        let stem = COMPANY_STEMS[i % COMPANY_STEMS.len()];
        let suffix = if i >= COMPANY_STEMS.len() {
            format!(" {}", i / COMPANY_STEMS.len() + 1)
        } else {
            String::new()
        };
        let name = format!(
            "{stem}{suffix} {}",
            ["Inc.", "LLC", "Corp.", "Group", "Partners"][i % 5]
        );
        let eur = i % 10 == 9;
        companies.push(json!({
            "id": 100 + i as i64,
            "identifier": format!("{}{}", stem.replace(' ', ""), if suffix.is_empty() { String::new() } else { (i / COMPANY_STEMS.len() + 1).to_string() }),
            "name": name,
            "status": { "id": 1, "name": "Active" },
            "addressLine1": format!("{} Market Street", 100 + i),
            "city": if eur { "Amsterdam" } else { "Springfield" },
            "state": if eur { Value::Null } else { json!("IL") },
            "zip": format!("{:05}", 10000 + i * 37),
            "country": { "id": 1, "name": if eur { "Netherlands" } else { "United States" } },
            "phoneNumber": format!("555-{:04}", 1000 + i),
            "website": format!("https://{}.example", stem.to_lowercase().replace(' ', "")),
            "taxCode": { "id": 1, "name": if i % 3 == 0 { "Exempt" } else { "Taxable" } },
            "currency": { "id": 1, "currencyCode": if eur { "EUR" } else { "USD" } },
            "billingTerms": { "id": 1, "name": "Net 30" },
            "invoiceToEmailAddress": format!("ap@{}.example", stem.to_lowercase().replace(' ', "")),
        }));
    }
    // Bad: a second company with the same name as the second customer (Xero refuses duplicates).
    let dup_id = 100 + spec.companies as i64;
    let mut dup = companies[1].clone();
    dup["id"] = json!(dup_id);
    dup["identifier"] = json!("InitechWest");
    // Created in the PSA after the first sync, as duplicates are: the original is
    // in Xero by then, so which of the two Xero refuses is never a race.
    let mut late = vec![(Kind::Company, dup.clone())];
    bad.push(BadRecord {
        erp_rule: Some(ErpRule::UniqueCustomerNames),
        kind: Kind::Company,
        id: dup_id,
        expect_reason: "erp.validation",
        what: format!(
            "customer named like an existing one ({}); Xero refuses duplicate contact names",
            companies[1]["name"].as_str().unwrap_or("")
        ),
    });
    // Bad: a company whose tax code the template does not map.
    let tax_id = dup_id + 1;
    companies.push(json!({
        "id": tax_id, "identifier": "MarsColony", "name": "Mars Colony Logistics",
        "status": { "id": 1, "name": "Active" }, "taxCode": { "id": 9, "name": "Mars Colony Tax" },
        "currency": { "id": 1, "currencyCode": "USD" }, "billingTerms": { "id": 1, "name": "Net 45" },
    }));
    bad.push(BadRecord {
        erp_rule: None,
        kind: Kind::Company,
        id: tax_id,
        expect_reason: "validation.unknown_tax_code",
        what: "customer with tax code \"Mars Colony Tax\", which the template does not map".into(),
    });

    // Projects: three per customer; EUR customers are billed by PSA invoices,
    // except the first project of each, which is billed by time (in euros).
    let mut projects = Vec::new();
    let mut tm_projects = Vec::new();
    for i in 0..spec.projects {
        let ci = i % spec.companies;
        let c = &companies[ci];
        let eur = c["currency"]["currencyCode"] == "EUR";
        let roll = rng.u32(0..100);
        let (method, ptype) = if eur && i == ci {
            ("ActualRates", "Time & Materials")
        } else if eur {
            if roll < 60 {
                ("FixedFee", "Fixed Fee")
            } else {
                ("FixedFee", "Milestone")
            }
        } else if roll < 75 {
            ("ActualRates", "Time & Materials")
        } else if roll < 92 {
            ("FixedFee", "Fixed Fee")
        } else {
            ("FixedFee", "Milestone")
        };
        let (dept_id, dept_name) = DEPARTMENTS[i % DEPARTMENTS.len()];
        let id = 1000 + i as i64;
        let mut p = json!({
            "id": id,
            "name": format!("{} — {}", c["name"].as_str().unwrap_or(""), ["ERP rollout", "Cloud migration", "Brand refresh", "Data platform", "Security review", "Process redesign"][i % 6]),
            "company": cref(c["id"].as_i64().unwrap_or(0), c["identifier"].as_str().unwrap_or(""), c["name"].as_str().unwrap_or("")),
            "billingMethod": method,
            "type": { "id": 1, "name": ptype },
            "status": { "id": 1, "name": "Open" },
            "closedFlag": false,
            "department": { "id": (i % 4) as i64 + 1, "identifier": dept_id, "name": dept_name },
            "currency": { "id": 1, "currencyCode": c["currency"]["currencyCode"] },
            "estimatedStart": stamp(start - Months::new(2), 0),
            "estimatedEnd": stamp(end + Months::new(4), 0),
            "billingAmount": if method == "FixedFee" { num(Decimal::from(20_000 + 5_000 * (i as i64 % 8))) } else { Value::Null },
            "manager": { "id": 1, "identifier": "m0", "name": "Ava Adams" },
        });
        if method == "ActualRates" {
            tm_projects.push(id);
        }
        if i == 7 {
            // Bad: a T&M project without a department (a required dimension).
            p["billingMethod"] = json!("ActualRates");
            p["type"] = json!({ "id": 1, "name": "Time & Materials" });
            p.as_object_mut().expect("object").remove("department");
            tm_projects.retain(|x| *x != id);
        }
        projects.push(p);
    }
    if tm_projects.is_empty() {
        // Every roll missed: the firm still bills one project by time (seeds
        // that rolled a T&M project are unchanged).
        if let Some(p) = projects
            .iter_mut()
            .take(7)
            .find(|p| p["currency"]["currencyCode"] != "EUR" && p["billingMethod"] == "FixedFee")
        {
            p["billingMethod"] = json!("ActualRates");
            p["type"] = json!({ "id": 1, "name": "Time & Materials" });
            p["billingAmount"] = Value::Null;
            tm_projects.extend(p["id"].as_i64());
        }
    }
    let no_dept = 1007;
    let internal = 1000 + spec.projects as i64;
    projects.push(json!({
        "id": internal, "name": "Internal — training and bench",
        "company": cref(100, companies[0]["identifier"].as_str().unwrap_or(""), companies[0]["name"].as_str().unwrap_or("")),
        "billingMethod": "ActualRates", "type": { "id": 2, "name": "Internal" },
        "status": { "id": 1, "name": "Open" }, "closedFlag": false,
        "department": { "id": 1, "identifier": "CONS", "name": "Consulting" },
        "currency": { "id": 1, "currencyCode": "USD" },
    }));

    // People and their time.
    let mut time = Vec::new();
    let mut next_time = 100_000i64;
    let mut entry = |member: (i64, String, String),
                     role: &str,
                     rate: &str,
                     project: &Value,
                     date: NaiveDate,
                     hours: Decimal,
                     status: &str,
                     billable: &str| {
        next_time += 1;
        json!({
            "id": next_time,
            "company": project["company"],
            "chargeToType": "ProjectTicket",
            "chargeToId": project["id"],
            "project": { "id": project["id"], "name": project["name"] },
            "member": { "id": member.0, "identifier": member.1, "name": member.2 },
            "workType": { "id": 1, "name": "Regular" },
            "workRole": { "id": 1, "name": role },
            "timeStart": stamp(date, 14),
            "actualHours": num(hours),
            "billableOption": billable,
            "notes": format!("{} work", role.to_lowercase()),
            "hourlyRate": num(d(rate)),
            "status": status,
        })
    };
    let project_by_id: BTreeMap<i64, Value> = projects
        .iter()
        .map(|p| (p["id"].as_i64().unwrap_or(0), p.clone()))
        .collect();
    let other_projects: Vec<i64> = projects
        .iter()
        .filter(|p| p["billingMethod"] == "FixedFee")
        .filter_map(|p| p["id"].as_i64())
        .collect();
    for m in 0..spec.members {
        let (role, rate, _) = ROLES[rng.usize(0..ROLES.len())];
        let member = (
            m as i64 + 1,
            format!("m{m}"),
            format!(
                "{} {}",
                FIRST[m % FIRST.len()],
                LAST[(m / FIRST.len()) % LAST.len()]
            ),
        );
        if m == spec.members - 1 {
            // Bad: someone in a role the template has no item for (two entries).
            for date in days.iter().take(2) {
                let p = &project_by_id[&tm_projects[0 % tm_projects.len()]];
                let e = entry(
                    member.clone(),
                    "Quantum Architect",
                    "400.00",
                    p,
                    *date,
                    d("3.00"),
                    "ApprovedByTierTwo",
                    "Billable",
                );
                bad.push(BadRecord {
                    erp_rule: None,
                    kind: Kind::Time,
                    id: e["id"].as_i64().unwrap_or(0),
                    expect_reason: "validation.unmapped_value",
                    what: "time in work role \"Quantum Architect\", which has no ERP item".into(),
                });
                time.push(e);
            }
            continue;
        }
        let primary = if rng.u32(0..100) < 85 || other_projects.is_empty() {
            tm_projects[rng.usize(0..tm_projects.len())]
        } else {
            other_projects[rng.usize(0..other_projects.len())]
        };
        let secondary = tm_projects[rng.usize(0..tm_projects.len())];
        for date in &days {
            let p = if rng.u32(0..100) < 80 {
                primary
            } else {
                secondary
            };
            let hours = Decimal::new(600 + 25 * rng.i64(0..13), 2);
            let status = match rng.u32(0..1000) {
                0..=19 => "PendingApproval",
                20..=29 => "Open",
                _ => "ApprovedByTierTwo",
            };
            let billable = if rng.u32(0..100) < 2 {
                "DoNotBill"
            } else {
                "Billable"
            };
            time.push(entry(
                member.clone(),
                role,
                rate,
                &project_by_id[&p],
                *date,
                hours,
                status,
                billable,
            ));
        }
        if m % 50 == 0 {
            time.push(entry(
                member.clone(),
                role,
                rate,
                &project_by_id[&internal],
                days[0],
                d("2.00"),
                "ApprovedByTierTwo",
                "DoNotBill",
            ));
        }
    }
    // Bad: an entry of 25 hours.
    let ava = (1, "m0".to_string(), "Ava Adams".to_string());
    let e = entry(
        ava.clone(),
        "Partner",
        "325.00",
        &project_by_id[&tm_projects[1 % tm_projects.len()]],
        days[3],
        d("25.00"),
        "ApprovedByTierTwo",
        "Billable",
    );
    bad.push(BadRecord {
        erp_rule: None,
        kind: Kind::Time,
        id: e["id"].as_i64().unwrap_or(0),
        expect_reason: "validation.hours_out_of_range",
        what: "an entry of 25 hours".into(),
    });
    time.push(e);
    // Bad: time on the project without a department.
    for date in days.iter().take(4) {
        let e = entry(
            ava.clone(),
            "Partner",
            "325.00",
            &project_by_id[&no_dept],
            *date,
            d("1.50"),
            "ApprovedByTierTwo",
            "Billable",
        );
        bad.push(BadRecord {
            erp_rule: None,
            kind: Kind::Time,
            id: e["id"].as_i64().unwrap_or(0),
            expect_reason: "validation.required_dimension",
            what: "time on a project with no department".into(),
        });
        time.push(e);
    }
    // Bad: late time for the month already closed in the ERP.
    for h in ["4.00", "2.50", "3.00"] {
        let e = entry(
            ava.clone(),
            "Partner",
            "325.00",
            &project_by_id[&tm_projects[2 % tm_projects.len()]],
            lock,
            d(h),
            "ApprovedByTierTwo",
            "Billable",
        );
        bad.push(BadRecord {
            erp_rule: None,
            kind: Kind::Time,
            id: e["id"].as_i64().unwrap_or(0),
            expect_reason: "validation.closed_period",
            what: format!("time dated {lock}, in a closed period"),
        });
        time.push(e);
    }

    // Expenses.
    let mut expenses = Vec::new();
    let mut next_exp = 500_000i64;
    for m in (0..spec.members).step_by(1).filter(|m| m % 6 != 5) {
        for _ in 0..3 {
            next_exp += 1;
            let p = &project_by_id[&tm_projects[rng.usize(0..tm_projects.len())]];
            let date = days[rng.usize(0..days.len())];
            let amount = Decimal::new(2000 + rng.i64(0..83000), 2);
            expenses.push(json!({
                "id": next_exp,
                "company": p["company"],
                "chargeToType": "ProjectTicket",
                "chargeToId": p["id"],
                "project": { "id": p["id"], "name": p["name"] },
                "member": { "id": m as i64 + 1, "identifier": format!("m{m}"), "name": format!("{} {}", FIRST[m % FIRST.len()], LAST[(m / FIRST.len()) % LAST.len()]) },
                "type": { "id": 1, "name": EXPENSE_TYPES[rng.usize(0..EXPENSE_TYPES.len())] },
                "amount": num(amount),
                "billableOption": if rng.u32(0..100) < 90 { "Billable" } else { "DoNotBill" },
                "date": stamp(date, 0),
                "status": if rng.u32(0..100) < 96 { "ApprovedByTierTwo" } else { "PendingApproval" },
                "notes": "client travel",
            }));
        }
    }
    next_exp += 1;
    let p = &project_by_id[&tm_projects[3 % tm_projects.len()]];
    expenses.push(json!({
        "id": next_exp, "company": p["company"], "chargeToType": "ProjectTicket", "chargeToId": p["id"],
        "project": { "id": p["id"], "name": p["name"] },
        "member": { "id": 1, "identifier": "m0", "name": "Ava Adams" },
        "type": { "id": 9, "name": "Crypto Mining Rig" }, "amount": num(d("4999.00")),
        "billableOption": "Billable", "date": stamp(days[5], 0), "status": "ApprovedByTierTwo", "notes": "do not ask",
    }));
    bad.push(BadRecord {
        erp_rule: None,
        kind: Kind::Expense,
        id: next_exp,
        expect_reason: "validation.unmapped_value",
        what: "expense of type \"Crypto Mining Rig\", which has no ERP account".into(),
    });

    // PSA invoices for fixed-fee and milestone projects, and two credit memos.
    let mut invoices = Vec::new();
    let mut next_inv = 900_000i64;
    let tax_rate = d(SALES_TAX_PERCENT) / Decimal::from(100);
    let invoice_for = |id: i64,
                       number: String,
                       p: &Value,
                       company: &Value,
                       ty: &str,
                       amount: Decimal,
                       date: NaiveDate| {
        let taxable = company["taxCode"]["name"] == "Taxable";
        let tax = if taxable {
            (amount * tax_rate)
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        } else {
            Decimal::ZERO
        };
        json!({
            "id": id, "invoiceNumber": number, "type": ty,
            "status": { "id": 1, "name": "Sent", "isClosed": false },
            "company": cref(company["id"].as_i64().unwrap_or(0), company["identifier"].as_str().unwrap_or(""), company["name"].as_str().unwrap_or("")),
            "applyToType": "Project", "applyToId": p["id"],
            "project": { "id": p["id"], "name": p["name"] },
            "date": stamp(date, 0), "dueDate": stamp(date + Days::new(30), 0),
            "currency": { "id": 1, "currencyCode": company["currency"]["currencyCode"] },
            "taxCode": company["taxCode"],
            "serviceTotal": num(amount), "expenseTotal": 0, "productTotal": 0, "agreementAmount": 0,
            "subtotal": num(amount), "salesTax": num(tax), "total": num(amount + tax),
            "payments": 0, "credits": 0, "balance": num(amount + tax),
        })
    };
    let company_by_id: BTreeMap<i64, Value> = companies
        .iter()
        .map(|c| (c["id"].as_i64().unwrap_or(0), c.clone()))
        .collect();
    for p in projects
        .iter()
        .filter(|p| p["billingMethod"] == "FixedFee" && p["type"]["name"] != "Internal")
    {
        next_inv += 1;
        let company = &company_by_id[&p["company"]["id"].as_i64().unwrap_or(0)];
        let amount = Decimal::from(2_500 + 500 * rng.i64(0..30));
        let date = days[days.len().saturating_sub(1 + rng.usize(0..5))];
        invoices.push(invoice_for(
            next_inv,
            format!("CW-{}", next_inv - 900_000),
            p,
            company,
            "Standard",
            amount,
            date,
        ));
    }
    let fixed: Vec<&Value> = projects
        .iter()
        .filter(|p| p["billingMethod"] == "FixedFee" && p["type"]["name"] != "Internal")
        .collect();
    for (k, amount) in [(0usize, "500.00"), (1, "1250.00")] {
        if fixed.is_empty() {
            break;
        }
        next_inv += 1;
        let p = fixed[(k * 3) % fixed.len()];
        let company = &company_by_id[&p["company"]["id"].as_i64().unwrap_or(0)];
        let mut cm = invoice_for(
            next_inv,
            format!("CM-{}", k + 1),
            p,
            company,
            "CreditMemo",
            d(amount),
            days[days.len() - 1],
        );
        for f in ["serviceTotal", "subtotal", "salesTax", "total", "balance"] {
            let v = cm[f]
                .as_number()
                .and_then(|n| Decimal::from_str(&n.to_string()).ok())
                .unwrap_or_default();
            cm[f] = num(-v);
        }
        invoices.push(cm);
    }
    // Bad: a standard invoice below zero (an adjustment larger than its charges):
    // no ERP invoice can be negative, so finance must issue a credit memo instead.
    if let Some(p) = fixed.first() {
        next_inv += 1;
        let company = &company_by_id[&p["company"]["id"].as_i64().unwrap_or(0)];
        let mut neg = invoice_for(
            next_inv,
            format!("CW-{}", next_inv - 900_000),
            p,
            company,
            "Standard",
            d("50.00"),
            days[days.len() - 1],
        );
        for f in ["serviceTotal", "subtotal", "salesTax", "total", "balance"] {
            let v = neg[f]
                .as_number()
                .and_then(|n| Decimal::from_str(&n.to_string()).ok())
                .unwrap_or_default();
            neg[f] = num(-v);
        }
        invoices.push(neg);
        bad.push(BadRecord {
            erp_rule: None,
            kind: Kind::Invoice,
            id: next_inv,
            expect_reason: "validation.negative_amount",
            what: "standard invoice below zero; an ERP invoice cannot be negative".into(),
        });
    }
    // The duplicate-named customer has one invoice: it waits on its customer, which Xero refuses.
    next_inv += 1;
    let dup_company = dup.clone();
    let p0 = &projects[0];
    let mut blocked = invoice_for(
        next_inv,
        format!("CW-{}", next_inv - 900_000),
        p0,
        &dup_company,
        "Standard",
        d("3000.00"),
        days[2],
    );
    blocked["applyToType"] = json!("Company");
    blocked.as_object_mut().expect("object").remove("project");
    late.push((Kind::Invoice, blocked));
    bad.push(BadRecord {
        erp_rule: Some(ErpRule::UniqueCustomerNames),
        kind: Kind::Invoice,
        id: next_inv,
        expect_reason: "dependency.blocked",
        what: "invoice for the customer Xero refused".into(),
    });

    DemoFirm {
        period_start: start,
        period_end: end,
        lock_date: lock,
        members: spec.members,
        companies,
        projects,
        time,
        expenses,
        invoices,
        late,
        bad,
    }
}

impl DemoFirm {
    /// Loads the firm into the ConnectWise simulator (no callbacks: the firm
    /// existed before Ferry was connected).
    pub fn seed(&self, cw: &CwSim) {
        cw.seed(Kind::Company, self.companies.clone());
        cw.seed(Kind::Project, self.projects.clone());
        cw.seed(Kind::Time, self.time.clone());
        cw.seed(Kind::Expense, self.expenses.clone());
        cw.seed(Kind::Invoice, self.invoices.clone());
    }

    /// Creates the late records in ConnectWise, as users would, with callbacks.
    pub async fn add_late(&self, cw: &CwSim) {
        for (kind, record) in &self.late {
            cw.create(*kind, record.clone()).await;
        }
    }

    /// The Xero organisation this firm books into.
    pub fn xero_config(&self) -> XeroSimConfig {
        let mut cfg = XeroSimConfig {
            items: ROLES.iter().map(|r| r.2.to_string()).collect(),
            accounts: ["200", "260", "270", "090"]
                .into_iter()
                .map(String::from)
                .collect(),
            period_lock: Some(self.lock_date),
            ..XeroSimConfig::default()
        };
        cfg.tax_rates.insert("OUTPUT".into(), d(SALES_TAX_PERCENT));
        cfg.tracking.insert(
            "Department".into(),
            DEPARTMENTS
                .iter()
                .map(|x| x.0.to_string())
                .collect::<BTreeSet<_>>(),
        );
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_month_is_the_one_before_today_across_a_new_year() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let jan = generate(&DemoSpec {
            members: 12,
            ..DemoSpec::for_today(d(2028, 1, 1))
        });
        assert_eq!(
            (jan.period_start, jan.lock_date),
            (d(2027, 12, 1), d(2027, 11, 30))
        );
        assert!(
            jan.time
                .iter()
                .filter_map(|t| t["timeStart"].as_str())
                .all(|s| s.starts_with("2027-12") || s.starts_with("2027-11-30")),
            "December's time, and late time on the lock date"
        );
        let march = DemoSpec::for_today(d(2028, 3, 31));
        assert_eq!(march.month, d(2028, 2, 1));
    }

    #[test]
    fn the_demo_firm_is_the_size_the_product_promises_and_deterministic() {
        let spec = DemoSpec::for_today(NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(a.time, b.time, "same seed, same firm");
        assert_eq!(
            a.period_start,
            NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()
        );
        assert_eq!(a.lock_date, NaiveDate::from_ymd_opt(2026, 9, 30).unwrap());
        assert_eq!(a.members, 600);
        assert!(a.companies.len() >= 40);
        assert!(a.projects.len() > 100);
        assert!(
            a.time.len() > 10_000,
            "a month of time for 600 people: {}",
            a.time.len()
        );
        assert!(a.expenses.len() > 1_000);
        let unapproved = a
            .time
            .iter()
            .filter(|t| t["status"] != "ApprovedByTierTwo")
            .count();
        assert!(unapproved > 50, "some entries await approval: {unapproved}");
        assert!(
            a.bad.len() >= 8 && a.bad.len() <= 20,
            "a few bad records: {}",
            a.bad.len()
        );
    }
}
