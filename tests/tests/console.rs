//! The partner console in a real browser (headless Chromium through
//! chromedriver), over a firm the local pipeline has just synced: each role
//! signs in; finance finds an exception the template causes, the template is
//! fixed, finance replays it and watches it post without reloading; a
//! customer user cannot reach another customer's pages. Screenshots of the
//! main pages go to `.ferry/console-shots/`.

use std::sync::Arc;

use ferry_canon::TenantId;
use ferry_console::{
    Brand, Console, ConsoleStore, Customer, LocalFleet, Role, SqliteConsoleStore, User,
};
use ferry_core::ports::{ExceptionStatus, Owner};
use ferry_core::template::{Template, TemplateSource};
use ferry_tests::browser::Driver;
use ferry_tests::*;

const PASSWORD: &str = "browser test password";

fn t(s: &str) -> TenantId {
    TenantId::parse(s).expect("slug")
}

/// The console over the harness's stores: the firm is Northwind's customer,
/// with one user per role; another Northwind customer and a Bluefin one exist
/// (with no data) to be kept out of sight.
async fn serve_console(h: &Harness) -> String {
    let store = Arc::new(SqliteConsoleStore::memory().expect("console store"));
    for (partner, name, primary) in [
        ("northwind", "Northwind Integrations", "#0B5FFF"),
        ("bluefin", "Bluefin Systems", "#004C6D"),
    ] {
        store
            .put_brand(&Brand {
                partner: partner.into(),
                name: name.into(),
                support_email: format!("support@{partner}.example"),
                logo_url: None,
                primary: primary.into(),
                accent: "#FFB000".into(),
                show_ferry: false,
            })
            .await
            .expect("brand");
    }
    for (tenant, partner, name) in [
        (h.tenant.as_str(), "northwind", "Test Firm LLP"),
        ("initech", "northwind", "Initech Professional Services"),
        ("globex", "bluefin", "Globex Advisory"),
    ] {
        store
            .put_customer(&Customer {
                tenant: t(tenant),
                partner: partner.into(),
                name: name.into(),
                tier: "premium".into(),
                sla_seconds: 900,
                psa: "connectwise".into(),
                erp: "xero".into(),
            })
            .await
            .expect("customer");
    }
    let hash = ferry_console::auth::hash_password(PASSWORD).expect("hash");
    for (name, role, tenant) in [
        ("nina.admin", Role::PartnerAdmin, None),
        ("sam.support", Role::PartnerSupport, None),
        (
            "fiona.finance",
            Role::CustomerFinance,
            Some(h.tenant.clone()),
        ),
        (
            "oscar.ops",
            Role::CustomerOperations,
            Some(h.tenant.clone()),
        ),
    ] {
        store
            .put_user(&User {
                name: name.into(),
                partner: "northwind".into(),
                role,
                tenant,
                password_hash: hash.clone(),
            })
            .await
            .expect("user");
    }
    let console = Console::new(
        store,
        Arc::new(LocalFleet {
            deps: h.deps.clone(),
        }),
        h.local.clock.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(listener, ferry_console::router(Arc::new(console)))
            .await
            .expect("serve");
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_each_role_signs_in_and_a_template_fix_replays_to_posted() {
    let h = Harness::start(small_firm()).await;
    h.sync().await;
    let base = serve_console(&h).await;
    let driver = Driver::start().await;
    let b = driver.browser().await;

    // Sign-in page, and a wrong password.
    b.goto(&format!("{base}/sign-in")).await;
    b.shot("sign-in").await;
    b.sign_in(&base, "nina.admin", "not the password").await;
    assert!(b.body().await.contains("do not match"));

    // Each role signs in and sees the overview under the partner's brand.
    for (user, role) in [
        ("nina.admin", "partner admin"),
        ("sam.support", "partner support"),
        ("oscar.ops", "customer operations"),
        ("fiona.finance", "customer finance"),
    ] {
        b.sign_in(&base, user, PASSWORD).await;
        assert!(
            b.text("#whoami").await.contains(role),
            "{user} is signed in as {role}"
        );
        let page = b.body().await;
        assert!(
            page.contains("Northwind Integrations"),
            "the partner's brand"
        );
        assert!(page.contains("Test Firm LLP"));
        assert!(
            !page.contains("Globex"),
            "another partner's customer is not shown"
        );
        assert!(!page.contains("Ferry"), "no Ferry on the partner's pages");
        if user == "nina.admin" {
            assert!(
                page.contains("Initech"),
                "a partner role sees all its customers"
            );
            b.shot("customers").await;
        } else if user == "oscar.ops" {
            assert!(
                !page.contains("Initech"),
                "a customer role sees only its own"
            );
            // By URL: another customer's page is not there for this user.
            b.goto(&format!("{base}/t/initech")).await;
            assert!(b.body().await.contains("no such customer"));
            b.goto(&format!("{base}/t/globex/audit")).await;
            assert!(b.body().await.contains("no such customer"));
            b.goto(&format!("{base}/")).await;
        }
        if user != "fiona.finance" {
            b.click_to_page("header form.who button").await;
            assert!(b.url().await.ends_with("/sign-in"), "{user} signed out");
        }
    }

    // Finance finds the exception the template causes: an unmapped work role.
    b.goto(&format!(
        "{base}/exceptions?owner=finance&domain=time_entries"
    ))
    .await;
    b.shot("exceptions").await;
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#exceptions tbody tr"))
        .await
        .expect("rows");
    let mut target = None;
    for r in rows {
        let text = r.text().await.expect("row text");
        if text.contains("Quantum Architect") {
            target = Some(r.attr("data-id").await.expect("attr").expect("data-id"));
            break;
        }
    }
    let id = target.expect("an unmapped work role exception is listed for finance");
    b.click_to_page(&format!("tr[data-id=\"{id}\"] td a")).await;
    assert!(b.text("#status").await.contains("open"));
    assert!(
        b.body().await.contains("value_maps.work_role_item"),
        "the rule is named"
    );
    b.shot("exception").await;

    // The partner fixes the template (as `ferry template` and a deploy would).
    let fixed = TemplateSource::new(
        "fix.toml",
        "[template]\nversion = \"2\"\ncustomer = \"test\"\n[value_maps.expense_type_account]\n\"Ground Transport\" = \"260\"\n[value_maps.work_role_item]\n\"Quantum Architect\" = \"CONS-PRN\"\n",
    );
    let template = Template::load(&base_template(), Some(&fixed)).expect("fixed template");
    assert!(
        h.local
            .tenants
            .set_template(&h.tenant, template)
            .expect("fits")
    );

    // Finance replays it and watches it post, without reloading.
    b.click("#replay").await;
    let outcome = b
        .wait_text("#replay-result", 60, |t| {
            t.starts_with("Posted") || t.contains("failed again")
        })
        .await;
    assert!(outcome.starts_with("Posted"), "{outcome}");
    assert_eq!(b.text("#status").await, "resolved");
    let e = h
        .deps
        .exceptions
        .get(&h.tenant, &id)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(e.status, ExceptionStatus::Resolved);
    assert_eq!(e.owner, Owner::Finance);

    // Reconciliation of the firm's month: finance signs it off.
    h.settle().await;
    let report = ferry_core::usecases::reconcile::run(
        &h.deps,
        &h.tenant,
        h.sims.firm.period_start,
        h.sims.firm.period_end,
    )
    .await
    .expect("reconcile");
    assert!(report.clean, "the small firm reconciles");
    b.goto(&format!("{base}/t/{}/reconciliation", h.tenant))
        .await;
    b.click_to_page("#runs tbody tr td a").await;
    assert!(b.text("#sign-off").await.contains("not signed off"));
    b.shot("reconciliation").await;
    b.click_to_page("#sign").await;
    assert!(
        b.text("#sign-off")
            .await
            .contains("signed off by fiona.finance"),
        "the sign-off shows with the user"
    );

    // The replay is in the audit trail with the user who did it.
    b.goto(&format!("{base}/t/{}/audit?user=fiona.finance", h.tenant))
        .await;
    let audit = b.text("#actions").await;
    assert!(
        audit.contains("fiona.finance") && audit.contains("replay"),
        "{audit}"
    );
    b.goto(&format!("{base}/t/{}/audit", h.tenant)).await;
    b.shot("audit").await;
    b.goto(&format!("{base}/t/{}/trends", h.tenant)).await;
    assert!(
        b.client
            .find(fantoccini::Locator::Css("#exceptions-chart svg rect"))
            .await
            .is_ok(),
        "today's exceptions are drawn"
    );
    assert!(b.text("#latency").await.contains("p95"));
    b.shot("trends").await;
    b.close().await;
}
