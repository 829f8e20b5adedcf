//! The `ferry` binary, as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ferry() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferry"));
    c.env("FERRY_LOG", "error");
    c
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("ferry runs");
    assert!(
        out.status.success(),
        "ferry failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn template_validate_accepts_the_shipped_templates_and_names_what_is_wrong() {
    let base = repo().join("templates/connectwise-xero.toml");
    let overlay = repo().join("tenants/demo-firm/template.toml");
    let out = ferry()
        .args(["template", "validate"])
        .arg(&base)
        .arg("--override")
        .arg(&overlay)
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("valid: connectwise-xero@1.0.0+demo-firm@1#")
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[template]\nversion = \"2\"\n[domains.time_entries]\nitem = { from = \"record.role\", map = \"missing\" }\n").expect("write");
    let out = ferry()
        .args(["template", "validate"])
        .arg(&base)
        .arg("--override")
        .arg(&bad)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "an invalid template fails");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml: domains.time_entries.item.map: value map \"missing\""),
        "{err}"
    );
    let v = run_json(
        ferry()
            .args(["template", "validate"])
            .arg(&base)
            .arg("--json"),
    );
    assert_eq!(v["valid"], true);

    // A template for connectors Ferry does not have (or of the wrong side).
    let text = std::fs::read_to_string(&base).expect("base");
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        text.replace("psa = \"connectwise\"", "psa = \"sage\"")
            .replace("erp = \"xero\"", "erp = \"redmine\""),
    )
    .expect("write");
    let out = ferry()
        .args(["template", "validate"])
        .arg(&other)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("template.psa: \"sage\" is not a PSA connector"),
        "{err}"
    );
    assert!(
        err.contains("template.erp: \"redmine\" is not an ERP connector"),
        "{err}"
    );
}

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sim_preview_sync_exceptions_and_reconcile_work_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ferry.db");
    let simdir = dir.path().join("sim");
    let _sim = Sim(ferry()
        // A fixed month: the firm's dates do not depend on the day the test runs.
        .args(["sim", "--members", "12", "--month", "2026-10"])
        .arg("--dir")
        .arg(&simdir)
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::null())
        .spawn()
        .expect("sim starts"));
    let tenant = simdir.join("tenant.toml");
    let start = Instant::now();
    while !(tenant.exists()
        && std::fs::read_to_string(&tenant).is_ok_and(|t| t.contains("[template]")))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "ferry sim wrote no tenant file"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500)); // secrets are stored just after the file

    // Before the first sync: which values the PSA uses that no map covers.
    let out = ferry()
        .args(["template", "validate", "--json", "-t"])
        .arg(&tenant)
        .arg("--db")
        .arg(&db)
        .args(["--from", "2026-10-01", "--to", "2026-10-31"])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "uncovered values fail the check"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let unmapped: Vec<(String, String)> = v["coverage"]["unmapped"]
        .as_array()
        .expect("list")
        .iter()
        .map(|u| {
            (
                u["map"].as_str().unwrap().to_string(),
                u["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("value_maps.work_role_item", "Quantum Architect"),
        ("value_maps.tax_code", "Mars Colony Tax"),
        ("value_maps.expense_type_account", "Crypto Mining Rig"),
    ] {
        assert!(
            unmapped
                .iter()
                .any(|(m, val)| m == expected.0 && val == expected.1),
            "{expected:?} in {unmapped:?}"
        );
    }
    assert_eq!(unmapped.len(), 3, "and nothing else: {unmapped:?}");

    // The same tenant wired to a template written for other connectors is
    // refused when it is loaded, with every reason, before anything is read.
    let text = std::fs::read_to_string(&tenant).expect("tenant file");
    let misfit = simdir.join("misfit.toml");
    let rewired = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("base =") {
                format!(
                    "base = {:?}",
                    repo()
                        .join("templates/redmine-tryton.toml")
                        .display()
                        .to_string()
                )
            } else if l.trim_start().starts_with("override =") {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&misfit, rewired).expect("write");
    let out = ferry()
        .args(["template", "validate", "-t"])
        .arg(&misfit)
        .arg("--db")
        .arg(&db)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a misfit template is refused: {err}");
    for reason in [
        "template.psa is \"redmine\", but this tenant's psa is \"connectwise\"",
        "template.erp is \"tryton\", but this tenant's erp is \"xero\"",
        "domains.projects: this ERP connector does not write project documents",
        "timesheet",
    ] {
        assert!(err.contains(reason), "{reason:?} in {err}");
    }

    let preview = run_json(
        ferry()
            .args(["preview", "--json", "-t"])
            .arg(&tenant)
            .arg("--db")
            .arg(&db),
    );
    let docs = preview["documents"].as_array().expect("documents");
    assert!(
        docs.iter().any(|d| d["kind"] == "contact"),
        "preview shows contacts"
    );
    assert!(
        docs.iter().any(|d| d["kind"] == "invoice"),
        "preview shows invoices"
    );

    let summary = run_json(
        ferry()
            .args(["sync", "--json", "-t"])
            .arg(&tenant)
            .arg("--db")
            .arg(&db),
    );
    assert!(
        summary["domains"]["time_entries"]["posted"]
            .as_u64()
            .expect("count")
            > 50,
        "{summary}"
    );

    // A listening sync holds the database: a second worker is refused at once,
    // and SIGTERM stops the first cleanly, with its summary.
    let mut listener = ferry()
        .args([
            "sync",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--domain",
            "customers",
            "-t",
        ])
        .arg(&tenant)
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("listener starts");
    let stderr = listener.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut heard = Vec::new();
    while !heard
        .iter()
        .any(|l: &String| l.contains("listening for webhooks"))
    {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => heard.push(line),
            Err(e) => panic!("the listener never listened ({e}): {heard:#?}"),
        }
    }
    let second = ferry()
        .args(["sync", "--json", "-t"])
        .arg(&tenant)
        .arg("--db")
        .arg(&db)
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success() && said.contains("in use by another ferry process"),
        "a second worker on one database is refused: {said}"
    );
    assert!(
        said.contains(&format!("pid {}", listener.id())),
        "and told who holds it: {said}"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &listener.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = listener.wait_with_output().expect("listener ends");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        out.status.success(),
        "SIGTERM is a clean stop: {:?} {rest:#?}",
        out.status
    );
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM: stopping intake")),
        "the stop is announced: {rest:#?}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the summary is printed as JSON");
    assert!(summary["domains"].is_object(), "{summary}");

    let list = run_json(
        ferry()
            .args([
                "exceptions",
                "list",
                "--json",
                "--tenant",
                "demo-firm",
                "--db",
            ])
            .arg(&db),
    );
    let list = list.as_array().expect("array");
    assert!(!list.is_empty(), "the seeded bad records are listed");
    let id = list[0]["id"].as_str().expect("id").to_string();
    let shown = run_json(
        ferry()
            .args([
                "exceptions",
                "show",
                &id,
                "--json",
                "--tenant",
                "demo-firm",
                "--db",
            ])
            .arg(&db),
    );
    assert_eq!(shown["id"], id.as_str());
    let out = ferry()
        .args(["exceptions", "replay", &id, "--tenant", "demo-firm", "--db"])
        .arg(&db)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (first, last) = ("2026-10-01", "2026-10-31");
    let report = run_json(
        ferry()
            .args(["reconcile", "--json", "-t"])
            .arg(&tenant)
            .arg("--db")
            .arg(&db)
            .args(["--from", first, "--to", last]),
    );
    assert_eq!(
        report["clean"],
        true,
        "{}",
        serde_json::to_string_pretty(&report["rows"]).unwrap_or_default()
    );

    console_serves_the_synced_tenant(&db);
}

fn console(db: &Path, args: &[&str], password: &str) -> std::process::Output {
    let mut c = ferry();
    c.arg("console").args(args).arg("--db").arg(db);
    if args[1] == "add" {
        c.arg("--infra").arg(repo().join("infra"));
    }
    c.env("FERRY_CONSOLE_PASSWORD", password)
        .output()
        .expect("runs")
}

/// `ferry console` over the database a sync filled: the tenant put in a
/// partner's directory, a user added, the overview served behind sign-in.
fn console_serves_the_synced_tenant(db: &Path) {
    let password = "twelve chars or more";
    let out = console(
        db,
        &[
            "user",
            "add",
            "--name",
            "fiona",
            "--partner",
            "northwind",
            "--role",
            "customer_finance",
        ],
        password,
    );
    assert!(!out.status.success(), "a customer role names its customer");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant"));
    let out = console(
        db,
        &[
            "user",
            "add",
            "--name",
            "fiona",
            "--partner",
            "northwind",
            "--role",
            "customer_finance",
            "--tenant",
            "demo-firm",
        ],
        password,
    );
    assert!(!out.status.success(), "demo-firm is in no directory yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("customer add"));
    let out = console(
        db,
        &[
            "customer",
            "add",
            "--tenant",
            "demo-firm",
            "--partner",
            "northwind",
            "--name",
            "Demo Firm LLP",
        ],
        password,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = console(
        db,
        &[
            "user",
            "add",
            "--name",
            "fiona",
            "--partner",
            "northwind",
            "--role",
            "customer_finance",
            "--tenant",
            "demo-firm",
        ],
        "short",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"));
    let out = console(
        db,
        &[
            "user",
            "add",
            "--name",
            "fiona",
            "--partner",
            "northwind",
            "--role",
            "customer_finance",
            "--tenant",
            "demo-firm",
        ],
        password,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = |args: &[&str], says: &str| {
        let out = console(db, args, password);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    };
    refused(
        &[
            "user",
            "add",
            "--name",
            "fiona",
            "--partner",
            "northwind",
            "--role",
            "partner_admin",
        ],
        "--update",
    );
    refused(
        &[
            "user",
            "add",
            "--name",
            "x",
            "--partner",
            "nosuch",
            "--role",
            "partner_admin",
        ],
        "no partner nosuch",
    );
    refused(
        &[
            "user",
            "add",
            "--name",
            " ",
            "--partner",
            "northwind",
            "--role",
            "partner_admin",
        ],
        "--name",
    );
    refused(
        &[
            "customer",
            "add",
            "--tenant",
            "acme",
            "--partner",
            "bluefin",
            "--name",
            "A",
        ],
        "acme.toml",
    );
    refused(
        &[
            "customer",
            "add",
            "--tenant",
            "demo-firm",
            "--partner",
            "bluefin",
            "--name",
            "D",
        ],
        "--move",
    );
    refused(
        &[
            "customer",
            "add",
            "--tenant",
            "x1",
            "--partner",
            "northwind",
            "--name",
            "X",
            "--erp",
            "sap",
        ],
        "--erp",
    );
    let temp = [
        "user",
        "add",
        "--name",
        "temp",
        "--partner",
        "northwind",
        "--role",
        "partner_support",
    ];
    assert!(console(db, &temp, password).status.success());
    assert!(
        console(db, &["user", "remove", "--name", "temp"], password)
            .status
            .success()
    );
    refused(&["user", "remove", "--name", "temp"], "no user temp");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let _served = Sim(ferry()
        .arg("console")
        .arg("--db")
        .arg(db)
        .arg("--infra")
        .arg(repo().join("infra"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .expect("console starts"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let start = Instant::now();
        let signed = loop {
            let r = http
                .post(format!("{base}/sign-in"))
                .header("Origin", &base)
                .form(&[("user", "fiona"), ("password", password)])
                .send()
                .await;
            if let Ok(r) = r {
                break r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "ferry console does not answer"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER);
        let cookie = signed
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_string();
        let page = http
            .get(format!("{base}/"))
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("overview")
            .text()
            .await
            .expect("text");
        assert!(
            page.contains("Demo Firm LLP"),
            "the synced tenant is listed"
        );
        assert!(
            page.contains("Northwind Integrations"),
            "under its partner's brand from infra/"
        );
        assert!(
            !page.contains("Acme Consulting"),
            "a customer user sees only its own customer"
        );
        let exceptions = http
            .get(format!("{base}/exceptions?owner=finance"))
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("exceptions")
            .text()
            .await
            .expect("text");
        assert!(
            exceptions.contains("/t/demo-firm/exceptions/ex-"),
            "finance's exceptions are listed"
        );
    });
}

/// `ferry … | head`: a reader that closes the pipe ends ferry quietly with
/// SIGPIPE's status, never a panic and a backtrace.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let mut child = ferry()
        .args(["connectors", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// A command asked for JSON that fails (here: no such tenant file, no such
/// database folder, a future demo month) still answers in JSON on stdout,
/// `{"error": …}`, besides the message on stderr, and exits 1.
#[test]
fn a_failure_under_json_is_json_on_stdout_too() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("missing/tenant.toml");
    let db = dir.path().join("no-such-folder/ferry.db");
    let cases: [Vec<&std::ffi::OsStr>; 3] = [
        vec![
            "sync".as_ref(),
            "-t".as_ref(),
            missing.as_os_str(),
            "--db".as_ref(),
            db.as_os_str(),
            "--json".as_ref(),
        ],
        vec![
            "exceptions".as_ref(),
            "list".as_ref(),
            "--db".as_ref(),
            db.as_os_str(),
            "--tenant".as_ref(),
            "acme".as_ref(),
            "--json".as_ref(),
        ],
        vec![
            "run".as_ref(),
            "--month".as_ref(),
            "2999-01".as_ref(),
            "--json".as_ref(),
        ],
    ];
    for args in cases {
        let out = ferry().args(&args).output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {stdout:?}"));
        let message = v["error"].as_str().expect("an error message");
        assert!(!message.is_empty());
        assert!(
            stderr.contains(message),
            "{args:?}: the same message on stderr: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(
        !db.parent().expect("folder").exists(),
        "a failed command leaves no database folder or lock behind"
    );
}

/// A tenant the database holds nothing for is a mistake to name, with the
/// tenants it does hold, not "0 exceptions".
#[test]
fn a_mistyped_tenant_is_an_error_naming_the_tenants_there() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("ferry.db");
    let set = ferry()
        .args(["secret-set", "--db"])
        .arg(&db)
        .args(["--tenant", "acme", "xero.client_id", "x"])
        .output()
        .expect("runs");
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let list = |tenant: &str| {
        ferry()
            .args(["exceptions", "list", "--db"])
            .arg(&db)
            .args(["--tenant", tenant])
            .output()
            .expect("runs")
    };
    let ok = list("acme");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let typo = list("acmee");
    let said = String::from_utf8_lossy(&typo.stderr);
    assert_eq!(typo.status.code(), Some(1), "{said}");
    assert!(
        said.contains("holds nothing for tenant acmee") && said.contains("tenants there: acme"),
        "{said}"
    );
}
