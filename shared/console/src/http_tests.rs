//! The console over HTTP on loopback, without a browser: every route × every
//! role from the route table against an expectation written out by hand,
//! isolation by URL and by forged request, the session cookie's flags, CSRF
//! and Origin checks, the action log, and no secret on any page.

use std::sync::Arc;

use axum::http::Method;
use chrono::{TimeZone, Utc};
use ferry_canon::{Currency, Decimal, Domain, Money, SystemId, TenantId};
use ferry_core::messages::{ChangeNotice, Envelope, Origin};
use ferry_core::ports::{ChangeAction, ExceptionRecord, ExceptionStatus, Owner, QueueName};
use ferry_core::{Deps, PortError, ReasonCode, Settings, TenantContext, Tenants};
use ferry_embedded::Store;
use ferry_testkit::clock::ManualClock;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, LOCATION, ORIGIN, SET_COOKIE};

use crate::auth::hash_password;
use crate::routes::{Page, ROUTES};
use crate::{
    Brand, Console, ConsoleStore, Customer, LocalFleet, Need, Role, SqliteConsoleStore, User,
};

const SECRET: &str = "xero-client-secret-DO-NOT-RENDER";
const PASSWORD: &str = "a long enough password";

struct NoTenants;

#[async_trait::async_trait]
impl Tenants for NoTenants {
    async fn context(&self, _: &TenantId) -> Result<Option<Arc<TenantContext>>, PortError> {
        Ok(None)
    }
    async fn list(&self) -> Result<Vec<TenantId>, PortError> {
        Ok(Vec::new())
    }
}

/// The period every customer of the world has a clean reconciliation of.
fn jan() -> (chrono::NaiveDate, chrono::NaiveDate) {
    (
        chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        chrono::NaiveDate::from_ymd_opt(2026, 1, 31).expect("date"),
    )
}

fn t(s: &str) -> TenantId {
    TenantId::parse(s).expect("slug")
}

/// A served console with two partners: p1 has acme and initech, p2 globex.
struct World {
    base: String,
    clock: Arc<ManualClock>,
    deps: Deps,
    console: Arc<Console>,
    /// acme's exceptions: one finance owns, one project operations owns.
    acme_finance: String,
    acme_operations: String,
    globex: String,
    _server: tokio::task::JoinHandle<()>,
}

fn exception(tenant: &str, key: &str, owner: Owner) -> ExceptionRecord {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .expect("t");
    let notice = ChangeNotice {
        tenant: t(tenant),
        system: SystemId::parse("connectwise").expect("system"),
        domain: Domain::TimeEntries,
        id: key.to_string(),
        action: ChangeAction::Upsert,
        version: None,
        record: None,
        origin: Origin::Poll,
        received_at: at,
        correlation_id: "c".into(),
    };
    ExceptionRecord {
        id: format!("ex-{tenant}-{key}"),
        tenant: t(tenant),
        stage: "transform".into(),
        domain: Domain::TimeEntries,
        source_key: format!("time_entries:connectwise:{key}"),
        reason: ReasonCode::RequiredDimension,
        message: format!("department missing on <b>{key}</b>"),
        field: Some("dimensions.department".into()),
        rule: None,
        erp_message: None,
        owner,
        status: ExceptionStatus::Open,
        attempts: 1,
        first_seen: at,
        last_seen: at,
        amount: Some(Money::new(
            Decimal::new(-12_550, 2),
            Currency::parse("EUR").expect("EUR"),
        )),
        hours: Some(Decimal::new(15, 1)),
        doc_key: None,
        blocked_by: None,
        replay_queue: QueueName::Transform,
        replay_body: Envelope::Change(notice).to_body(),
    }
}

impl World {
    async fn start() -> World {
        let clock = Arc::new(ManualClock::at(
            Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0)
                .single()
                .expect("t"),
        ));
        let store = Store::memory(clock.clone(), 5).expect("store");
        store
            .secrets
            .set(&t("acme"), "client_secret", SECRET)
            .expect("secret");
        let deps = store.deps(clock.clone(), Arc::new(NoTenants), Settings::default());
        let console_store = Arc::new(SqliteConsoleStore::memory().expect("console store"));
        for (p, name) in [("p1", "Northwind"), ("p2", "Bluefin")] {
            console_store
                .put_brand(&Brand {
                    partner: p.into(),
                    name: format!("{name} Operations"),
                    support_email: format!("help@{p}.example"),
                    logo_url: None,
                    primary: "#0B5FFF".into(),
                    accent: "#FFB000".into(),
                    show_ferry: false,
                })
                .await
                .expect("brand");
        }
        for (tenant, partner) in [("acme", "p1"), ("initech", "p1"), ("globex", "p2")] {
            console_store
                .put_customer(&Customer {
                    tenant: t(tenant),
                    partner: partner.into(),
                    name: tenant.to_uppercase(),
                    tier: "silver".into(),
                    sla_seconds: 3_600,
                    psa: "connectwise".into(),
                    erp: "xero".into(),
                })
                .await
                .expect("customer");
        }
        let hash = hash_password(PASSWORD).expect("hash");
        for (name, partner, role, tenant) in [
            ("admin", "p1", Role::PartnerAdmin, None),
            ("support", "p1", Role::PartnerSupport, None),
            ("finance", "p1", Role::CustomerFinance, Some("acme")),
            ("operations", "p1", Role::CustomerOperations, Some("acme")),
            (
                "globex-finance",
                "p2",
                Role::CustomerFinance,
                Some("globex"),
            ),
        ] {
            console_store
                .put_user(&User {
                    name: name.into(),
                    partner: partner.into(),
                    role,
                    tenant: tenant.map(t),
                    password_hash: hash.clone(),
                })
                .await
                .expect("user");
        }
        let mut ids = Vec::new();
        for (tenant, key, owner) in [
            ("acme", "1", Owner::Finance),
            ("acme", "2", Owner::ProjectOperations),
            ("globex", "3", Owner::Finance),
            ("initech", "4", Owner::Support),
        ] {
            let e = deps
                .exceptions
                .raise(exception(tenant, key, owner))
                .await
                .expect("raise");
            ids.push(e.id);
        }
        for tenant in ["acme", "initech", "globex"] {
            let mut r = ferry_testkit::contracts::sample_report(
                tenant,
                jan().0,
                jan().1,
                3,
                // Nanoseconds, as a real clock gives: stores keep them at other precisions.
                Utc.with_ymd_and_hms(2026, 2, 2, 7, 0, 0)
                    .single()
                    .expect("t")
                    + chrono::Duration::nanoseconds(123_456_789),
            );
            r.unaccounted.clear();
            r.clean = true;
            deps.reports.put(&r).await.expect("report");
        }
        let console = Arc::new(Console::new(
            console_store,
            Arc::new(LocalFleet { deps: deps.clone() }),
            clock.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = crate::router(console.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        World {
            base,
            clock,
            deps,
            console,
            acme_finance: ids[0].clone(),
            acme_operations: ids[1].clone(),
            globex: ids[2].clone(),
            _server: server,
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("client")
    }

    /// Signs in; returns the cookie header and the CSRF token of the session.
    async fn sign_in(&self, user: &str) -> Agent {
        let resp = Self::client()
            .post(format!("{}/sign-in", self.base))
            .header(ORIGIN, &self.base)
            .form(&[("user", user), ("password", PASSWORD)])
            .send()
            .await
            .expect("sign in");
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{user} signs in");
        let set = resp
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .expect("a session cookie")
            .to_string();
        let cookie = set.split(';').next().expect("pair").to_string();
        let mut agent = Agent {
            base: self.base.clone(),
            cookie,
            csrf: String::new(),
            set_cookie: set,
        };
        let home = agent.get("/").await;
        assert_eq!(home.0, StatusCode::OK);
        agent.csrf = csrf_in(&home.1).expect("a CSRF token on the page");
        agent
    }
}

fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].chars().take_while(|c| *c != '"').collect())
}

/// A signed-in browser, by hand.
struct Agent {
    base: String,
    cookie: String,
    csrf: String,
    set_cookie: String,
}

impl Agent {
    fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::COOKIE,
            HeaderValue::from_str(&self.cookie).expect("cookie"),
        );
        h
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = World::client()
            .get(format!("{}{path}", self.base))
            .headers(self.headers())
            .send()
            .await
            .expect("get");
        (r.status(), r.text().await.unwrap_or_default())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let mut fields: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        fields.extend_from_slice(form);
        self.post_raw(path, &fields, Some(&self.base)).await
    }

    async fn post_raw(
        &self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = World::client()
            .post(format!("{}{path}", self.base))
            .headers(self.headers())
            .form(form);
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        let r = req.send().await.expect("post");
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (
            status,
            format!("{location}{}", r.text().await.unwrap_or_default()),
        )
    }
}

/// Who may reach what, written out apart from the code that decides it.
fn allowed(role: Role, need: Need) -> bool {
    use Role::*;
    match need {
        Need::Public | Need::SignedIn | Need::Read => true,
        Need::Act => matches!(
            role,
            PartnerAdmin | PartnerSupport | CustomerFinance | CustomerOperations
        ),
        Need::SignOff => matches!(role, PartnerAdmin | CustomerFinance),
        Need::ManageUsers => matches!(role, PartnerAdmin),
    }
}

/// Which customers a user of the world sees.
fn sees(user: &str, tenant: &str) -> bool {
    match user {
        "admin" | "support" => matches!(tenant, "acme" | "initech"),
        "finance" | "operations" => tenant == "acme",
        "globex-finance" => tenant == "globex",
        _ => false,
    }
}

fn role_of(user: &str) -> Role {
    match user {
        "admin" => Role::PartnerAdmin,
        "support" => Role::PartnerSupport,
        "finance" | "globex-finance" => Role::CustomerFinance,
        _ => Role::CustomerOperations,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_the_table_says() {
    let w = World::start().await;
    let users = [
        "admin",
        "support",
        "finance",
        "operations",
        "globex-finance",
    ];
    let mut agents = Vec::new();
    for u in users {
        agents.push((u, w.sign_in(u).await));
    }
    let anonymous = Agent {
        base: w.base.clone(),
        cookie: "console_session=not-a-session".into(),
        csrf: "x".into(),
        set_cookie: String::new(),
    };
    let mut checked = 0;
    let mut resolved = std::collections::HashSet::new();
    // Resolving closes the exception the other actions use: resolve goes last.
    let in_order = ROUTES
        .iter()
        .filter(|r| r.page != Page::Resolve)
        .chain(ROUTES.iter().filter(|r| r.page == Page::Resolve));
    for route in in_order {
        if matches!(route.page, Page::SignIn | Page::SignOut) {
            continue; // signing in and out change the session: tested on their own below
        }
        for tenant in ["acme", "initech", "globex"] {
            if !route.path.contains("{tenant}") && tenant != "acme" {
                continue;
            }
            // The exception in the path: acme's finance-owned one, or the tenant's own.
            let id = match tenant {
                "acme" => w.acme_finance.clone(),
                "globex" => w.globex.clone(),
                _ => "ex-initech-4".to_string(),
            };
            let path = route
                .path
                .replace("{tenant}", tenant)
                .replace("{id}", &id)
                .replace("{from}", "2026-01-01")
                .replace("{to}", "2026-01-31");
            // Anonymous: pages send to sign-in, posts are refused.
            let (status, _) = if route.method == Method::POST {
                anonymous
                    .post(&path, &[("id", &id), ("text", "x"), ("to", "")])
                    .await
            } else {
                anonymous.get(&path).await
            };
            let expected = match (route.need, route.method.clone()) {
                (Need::Public, _) => StatusCode::OK,
                (_, Method::POST) => StatusCode::UNAUTHORIZED,
                _ => StatusCode::SEE_OTHER,
            };
            assert_eq!(status, expected, "anonymous {} {path}", route.method);
            for (user, agent) in &agents {
                let (status, body) = if route.method == Method::POST {
                    agent
                        .post(&path, &[("id", &id), ("text", "looked at it"), ("to", "")])
                        .await
                } else {
                    agent.get(&path).await
                };
                let scoped = route.path.contains("{tenant}");
                let expected = if route.need == Need::Public {
                    StatusCode::OK
                } else if !allowed(role_of(user), route.need) {
                    StatusCode::FORBIDDEN
                } else if scoped && !sees(user, tenant) {
                    StatusCode::NOT_FOUND
                } else if route.method == Method::POST
                    && route.path.contains("{id}")
                    && *user == "operations"
                {
                    // acme's exception here is finance's: operations may read, not act.
                    StatusCode::FORBIDDEN
                } else if route.page == Page::Resolve && !resolved.insert(tenant) {
                    // Resolved by the first who could: a second resolve is refused.
                    StatusCode::CONFLICT
                } else if route.method == Method::POST {
                    StatusCode::SEE_OTHER
                } else {
                    StatusCode::OK
                };
                assert_eq!(
                    status,
                    expected,
                    "{user} {} {path}: {}",
                    route.method,
                    body.chars().take(200).collect::<String>()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked > 60,
        "the table covered {checked} route × user pairs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_user_cannot_reach_another_customer_by_url_or_forged_request() {
    let w = World::start().await;
    let fin = w.sign_in("finance").await;
    // Lists show only acme's exceptions, whatever the filter asks for.
    let (status, page) = fin.get("/exceptions?tenant=globex").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a customer the user does not have"
    );
    assert!(page.contains("no customer globex"));
    let (_, unknown) = fin.get("/exceptions?tenant=nosuch").await;
    assert!(
        unknown.contains("no customer nosuch"),
        "the same answer as for one that exists elsewhere"
    );
    assert!(
        !page.contains(&w.globex),
        "globex's exception is not listed"
    );
    let (_, page) = fin.get("/exceptions").await;
    assert!(page.contains(&w.acme_finance));
    assert!(!page.contains(&w.globex) && !page.contains("ex-initech-4"));
    // A forged replay of globex's exception with finance's own valid token.
    let (status, _) = fin
        .post(&format!("/t/globex/exceptions/{}/replay", w.globex), &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The same id under acme's path: acme has no such exception.
    let (status, _) = fin
        .post(&format!("/t/acme/exceptions/{}/replay", w.globex), &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = fin.post("/t/acme/replay", &[("id", &w.globex)]).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a bulk replay names what it refused"
    );
    let g = w
        .deps
        .exceptions
        .get(&t("globex"), &w.globex)
        .await
        .expect("get")
        .expect("globex exception");
    assert_eq!(
        g.status,
        ExceptionStatus::Open,
        "globex's exception was not touched"
    );
    // Another partner's customer is invisible to the partner's own admin too.
    let admin = w.sign_in("admin").await;
    let (status, _) = admin.get("/t/globex").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, overview) = admin.get("/").await;
    assert!(overview.contains("ACME") && overview.contains("INITECH"));
    assert!(!overview.contains("GLOBEX"));
    assert!(
        overview.contains("Northwind Operations"),
        "the partner's brand"
    );
    assert!(
        !overview.contains("Ferry"),
        "no Ferry on a partner's page unless it wants it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_session_token_and_the_console_origin_and_are_recorded() {
    let w = World::start().await;
    let fin = w.sign_in("finance").await;
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            fin.set_cookie.contains(flag),
            "{} lacks {flag}",
            fin.set_cookie
        );
    }
    let replay = format!("/t/acme/exceptions/{}/replay", w.acme_finance);
    let (s, _) = fin.post_raw(&replay, &[], Some(&fin.base)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no token");
    let (s, _) = fin
        .post_raw(
            &replay,
            &[("csrf", "0".repeat(64).as_str())],
            Some(&fin.base),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a wrong token");
    let other = w.sign_in("admin").await;
    let (s, _) = fin
        .post_raw(&replay, &[("csrf", other.csrf.as_str())], Some(&fin.base))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "another session's token");
    let (s, _) = fin
        .post_raw(&replay, &[("csrf", fin.csrf.as_str())], None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no Origin");
    let (s, _) = fin
        .post_raw(
            &replay,
            &[("csrf", fin.csrf.as_str())],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "another origin");
    let untouched = w
        .deps
        .exceptions
        .get(&t("acme"), &w.acme_finance)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        untouched.status,
        ExceptionStatus::Open,
        "nothing refused acted"
    );

    let (s, location) = fin.post(&replay, &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(location.starts_with(&format!("/t/acme/exceptions/{}", w.acme_finance)));
    let replayed = w
        .deps
        .exceptions
        .get(&t("acme"), &w.acme_finance)
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(replayed.status, ExceptionStatus::Replayed);
    let (s, json) = fin
        .get(&format!("/t/acme/exceptions/{}/status", w.acme_finance))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(json.contains("\"status\":\"replayed\""), "{json}");

    // Operations may not act on finance's exception, but may on its own.
    let ops = w.sign_in("operations").await;
    let (s, _) = ops
        .post(
            &format!("/t/acme/exceptions/{}/comment", w.acme_finance),
            &[("text", "mine?")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = ops
        .post(
            &format!("/t/acme/exceptions/{}/comment", w.acme_operations),
            &[("text", "<script>alert(1)</script> fixed the department")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _) = ops
        .post(
            &format!("/t/acme/exceptions/{}/assign", w.acme_operations),
            &[("to", "finance")],
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "finance cannot act on an operations exception"
    );
    let (s, _) = ops
        .post(
            &format!("/t/acme/exceptions/{}/assign", w.acme_operations),
            &[("to", "operations")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page) = ops
        .get(&format!("/t/acme/exceptions/{}", w.acme_operations))
        .await;
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; fixed"),
        "comments are escaped: {}",
        &page[page.find("Comments").unwrap_or(0)..][..400]
    );
    assert!(!page.contains("<script>alert(1)"));
    assert!(
        page.contains("department missing on &lt;b&gt;2&lt;&#x2f;b&gt;"),
        "messages are escaped"
    );
    let (s, _) = ops
        .post(
            &format!("/t/acme/exceptions/{}/resolve", w.acme_operations),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);

    let log = w
        .console
        .store
        .actions(&crate::ActionQuery {
            tenants: Some(vec![t("acme")]),
            ..crate::ActionQuery::default()
        })
        .await
        .expect("actions");
    let did: Vec<(String, String)> = log
        .iter()
        .filter(|a| a.action != "sign_in")
        .map(|a| (a.user.clone(), a.action.clone()))
        .rev()
        .collect();
    assert_eq!(
        did,
        [
            ("finance", "replay"),
            ("operations", "comment"),
            ("operations", "assign"),
            ("operations", "resolve"),
        ]
        .map(|(u, a)| (u.to_string(), a.to_string()))
    );
    let (_, audit) = ops.get("/t/acme/audit?user=operations").await;
    assert!(
        audit.contains("resolve") && !audit.contains(">replay<"),
        "audit search by user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_and_no_page_ever_shows_a_secret() {
    let w = World::start().await;
    let bad = World::client()
        .post(format!("{}/sign-in", w.base))
        .header(ORIGIN, &w.base)
        .form(&[("user", "admin"), ("password", "wrong")])
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(bad.headers().get(SET_COOKIE).is_none());
    let admin = w.sign_in("admin").await;
    let mut pages = vec![
        "/".to_string(),
        "/exceptions".into(),
        "/exceptions?status=resolved".into(),
        "/t/acme".into(),
        "/t/acme/audit".into(),
        "/t/acme/trends".into(),
        "/t/acme/audit/export?format=json".into(),
        "/t/acme/audit/export?format=csv".into(),
    ];
    pages.push(format!("/t/acme/exceptions/{}", w.acme_finance));
    for p in &pages {
        let (s, body) = admin.get(p).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert!(!body.contains(SECRET), "{p} shows a secret");
        assert!(!body.contains("$argon2"), "{p} shows a password hash");
        assert!(
            !body.contains("serde_json"),
            "{p} shows an internal representation"
        );
    }
    let (s, _) = admin.get("/t/acme/audit/export?format=xml").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin
        .get("/t/acme/audit?from=2026-04-01&to=2026-03-01")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = admin.get("/t/NOT A SLUG").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Expired: the session no longer signs anyone in.
    w.clock.advance(std::time::Duration::from_secs(
        crate::auth::SESSION_HOURS.unsigned_abs() * 3_600 + 1,
    ));
    let (s, _) = admin.get("/").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    // Signing out ends the session on the server, not just in the browser.
    let w2 = World::start().await;
    let support = w2.sign_in("support").await;
    let (s, _) = support.post("/sign-out", &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _) = support.get("/").await;
    assert_eq!(s, StatusCode::SEE_OTHER, "the old cookie is dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_signs_off_a_clean_period_and_a_later_run_needs_its_own() {
    let w = World::start().await;
    let fin = w.sign_in("finance").await;
    let (s, page) = fin
        .get("/t/acme/reconciliation/2026-01-01/2026-01-31")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("id=\"sign\""),
        "finance may sign a clean period off"
    );
    assert!(
        page.contains("EUR") && page.contains("USD"),
        "measures per currency"
    );
    assert!(
        page.contains("/t/acme/exceptions/ex-"),
        "differences lead to their exceptions"
    );
    let (s, _) = fin
        .post("/t/acme/reconciliation/2026-01-01/2026-01-31/sign-off", &[])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, page) = fin
        .get("/t/acme/reconciliation/2026-01-01/2026-01-31")
        .await;
    assert!(page.contains("signed off by finance"));
    assert!(!page.contains("id=\"sign\""), "signed once");
    let admin = w.sign_in("admin").await;
    let (_, overview) = admin.get("/").await;
    assert!(
        overview.contains("signed off"),
        "the overview shows the sign-off"
    );
    let (_, periods) = fin.get("/t/acme/reconciliation").await;
    assert!(
        periods.contains("signed off by finance"),
        "so does the list of periods"
    );

    // A run with unexplained differences cannot be signed off.
    let feb = (
        chrono::NaiveDate::from_ymd_opt(2026, 2, 1).expect("date"),
        chrono::NaiveDate::from_ymd_opt(2026, 2, 28).expect("date"),
    );
    let at = Utc
        .with_ymd_and_hms(2026, 3, 2, 7, 0, 0)
        .single()
        .expect("t");
    let dirty = ferry_testkit::contracts::sample_report("acme", feb.0, feb.1, 2, at);
    w.deps.reports.put(&dirty).await.expect("report");
    let (s, body) = fin
        .post("/t/acme/reconciliation/2026-02-01/2026-02-28/sign-off", &[])
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("unexplained"));
    let (_, overview) = admin.get("/").await;
    assert!(
        overview.contains("differences"),
        "the latest period does not reconcile"
    );

    // January reconciled again: the old sign-off is not this run's.
    let mut rerun = ferry_testkit::contracts::sample_report("acme", jan().0, jan().1, 3, at);
    rerun.unaccounted.clear();
    rerun.clean = true;
    w.deps.reports.put(&rerun).await.expect("report");
    let (_, page) = fin
        .get("/t/acme/reconciliation/2026-01-01/2026-01-31")
        .await;
    assert!(page.contains("not signed off") && page.contains("id=\"sign\""));
    let (s, _) = fin
        .get("/t/acme/reconciliation/2026-13-01/2026-01-31")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let offs = w
        .console
        .store
        .sign_offs(&t("acme"))
        .await
        .expect("sign-offs");
    assert_eq!(offs.len(), 1);
    assert_eq!(offs[0].user, "finance");
    let log = w
        .console
        .store
        .actions(&crate::ActionQuery {
            user: Some("finance".into()),
            ..crate::ActionQuery::default()
        })
        .await
        .expect("actions");
    assert!(
        log.iter()
            .any(|a| a.action == "sign_off" && a.target == "2026-01-01..2026-01-31")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_and_a_replay_does_not_make_a_customer_look_healthy() {
    let w = World::start().await;
    let admin = w.sign_in("admin").await;
    for q in [
        "min_age_days=4294967295",
        "min_age_days=2147483648",
        "min_age_days=36501",
        "min_age_days=-1",
        "min_age_days=abc",
        "owner=nonsense",
        "domain=nonsense",
        "status=RESOLVED",
    ] {
        let (s, page) = admin.get(&format!("/exceptions?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert!(page.contains("role=\"alert\""), "{q}: the problem is named");
        assert!(
            !page.contains(&w.acme_finance),
            "{q}: a bad filter lists nothing"
        );
    }
    let (s, _) = admin.get("/exceptions?min_age_days=36500").await;
    assert_eq!(s, StatusCode::OK);

    // Replayed, not yet through the pipeline: still held back, still open.
    let (_, before) = admin.get("/").await;
    assert!(
        before.contains("EUR -251.00"),
        "two exceptions of EUR -125.50 each"
    );
    let (s, location) = admin
        .post(
            "/t/acme/replay",
            &[
                ("id", &w.acme_finance),
                ("id", &w.acme_finance),
                ("id", "ex-nope"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(location.contains("replayed=1&refused=1"), "{location}");
    let (_, after) = admin.get("/").await;
    assert!(
        after.contains("EUR -251.00"),
        "a replay alone posts nothing"
    );
    let (_, outcome) = admin.get(&location).await;
    assert!(outcome.contains("Replayed 1") && outcome.contains("1 refused"));
    let replays = w
        .console
        .store
        .actions(&crate::ActionQuery::default())
        .await
        .expect("actions")
        .iter()
        .filter(|a| a.action == "replay")
        .count();
    assert_eq!(replays, 1, "an id named twice is replayed once");

    // Every answer carries the protective headers; pages are not cached.
    let r = World::client()
        .get(format!("{}/", w.base))
        .headers(admin.headers())
        .send()
        .await
        .expect("get");
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    assert_eq!(r.headers()["cache-control"], "no-store");

    // Too many failed sign-ins hold a name back, even with the right password.
    for _ in 0..crate::auth::MAX_FAILURES {
        let r = World::client()
            .post(format!("{}/sign-in", w.base))
            .header(ORIGIN, &w.base)
            .form(&[("user", "support"), ("password", "guess")])
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = World::client()
        .post(format!("{}/sign-in", w.base))
        .header(ORIGIN, &w.base)
        .form(&[("user", "support"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    w.clock.advance(std::time::Duration::from_secs(
        crate::auth::LOCKOUT_MINUTES.unsigned_abs() * 60,
    ));
    w.sign_in("support").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trends_chart_the_exceptions_of_each_day() {
    let w = World::start().await;
    let ops = w.sign_in("operations").await;
    let (s, page) = ops.get("/t/acme/trends").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("2 opened, 0 resolved"),
        "acme's two exceptions of 03-02"
    );
    assert!(page.contains("<svg") && page.contains("<title>03-02 2</title>"));
    let (s, _) = ops.get("/t/globex/trends").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
