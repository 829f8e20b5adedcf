//! The pages' templates and assets, compiled into the binary: Jinja templates
//! rendered on the server (HTML-escaped by default), one stylesheet, one
//! small script. Nothing is fetched from elsewhere at run time.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use minijinja::value::Value;
use serde::Serialize;

use crate::store::Brand;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("views/base.html")),
    ("sign_in.html", include_str!("views/sign_in.html")),
    ("customers.html", include_str!("views/customers.html")),
    ("customer.html", include_str!("views/customer.html")),
    ("exceptions.html", include_str!("views/exceptions.html")),
    (
        "exception_rows.html",
        include_str!("views/exception_rows.html"),
    ),
    ("exception.html", include_str!("views/exception.html")),
    ("audit.html", include_str!("views/audit.html")),
    (
        "reconciliations.html",
        include_str!("views/reconciliations.html"),
    ),
    (
        "reconciliation.html",
        include_str!("views/reconciliation.html"),
    ),
    ("trends.html", include_str!("views/trends.html")),
];

pub const STYLESHEET: &str = include_str!("assets/console.css");
pub const SCRIPT: &str = include_str!("assets/console.js");

/// The template environment, built once per process.
pub struct Views {
    env: Environment<'static>,
}

impl Views {
    pub fn new() -> Views {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
        }
        env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
        env.add_filter("when", when);
        Views { env }
    }

    /// Renders a page; a template error is a 500 with a plain message (and logged).
    pub fn page(&self, name: &str, ctx: impl Serialize) -> Response {
        self.page_with(StatusCode::OK, name, ctx)
    }

    pub fn page_with(&self, status: StatusCode, name: &str, ctx: impl Serialize) -> Response {
        let ctx = match serde_json::to_value(&ctx) {
            Ok(v) => jinja(&v),
            Err(e) => {
                tracing::error!(template = name, error = %e, "a console page's data");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be drawn",
                )
                    .into_response();
            }
        };
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "rendering a console page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be drawn",
                )
                    .into_response()
            }
        }
    }
}

impl Default for Views {
    fn default() -> Self {
        Views::new()
    }
}

/// `{{ t | when }}`: an RFC 3339 instant as a person reads it, to the
/// second, in UTC; anything else as it is.
fn when(v: String) -> String {
    chrono::DateTime::parse_from_rfc3339(&v)
        .map(|t| t.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or(v)
}

/// A page's data as template values. It goes through `serde_json::Value`
/// and is converted here by hand, because the workspace's serde_json keeps
/// numbers exactly (`arbitrary_precision`), which would reach a template as
/// a private wrapper object instead of a number: integers become integers,
/// any other number its exact decimal text (money is text already).
fn jinja(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.to_string()),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::from(items.iter().map(jinja).collect::<Vec<_>>()),
        J::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), jinja(v)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// The look of pages for a partner; a neutral one before sign-in or when the
/// partner has none on file. Colours that are not `#RRGGBB` are not used, so
/// a brand file cannot inject CSS.
#[derive(Debug, Clone, Serialize)]
pub struct Look {
    pub name: String,
    pub support_email: Option<String>,
    pub logo_url: Option<String>,
    pub primary: String,
    pub accent: String,
    pub show_ferry: bool,
}

impl Look {
    pub fn neutral() -> Look {
        Look {
            name: "Operations console".into(),
            support_email: None,
            logo_url: None,
            primary: "#1F3A5F".into(),
            accent: "#F2A900".into(),
            show_ferry: false,
        }
    }

    pub fn of(brand: Option<&Brand>) -> Look {
        let Some(b) = brand else {
            return Look::neutral();
        };
        let n = Look::neutral();
        Look {
            name: b.name.clone(),
            support_email: Some(b.support_email.clone()),
            logo_url: b
                .logo_url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with('/')),
            primary: colour(&b.primary).unwrap_or(n.primary),
            accent: colour(&b.accent).unwrap_or(n.accent),
            show_ferry: b.show_ferry,
        }
    }
}

fn colour(c: &str) -> Option<String> {
    let hex = c.strip_prefix('#')?;
    (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| c.to_string())
}

/// Serves a compiled-in asset with its type and a short cache.
pub fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_reach_templates_as_numbers_and_decimals_as_their_text() {
        let v = jinja(
            &serde_json::json!({ "n": 13, "z": 0, "d": serde_json::Number::from_string_unchecked("12.50".into()) }),
        );
        let env = Environment::new();
        let out = env
            .render_str(
                "{{ n + 1 }} {% if z %}yes{% else %}no{% endif %} {{ d }}",
                v,
            )
            .expect("render");
        assert_eq!(out, "14 no 12.50");
        assert_eq!(
            when("2026-12-05T06:02:44.458784648Z".into()),
            "2026-12-05 06:02:44 UTC"
        );
        assert_eq!(when("yesterday".into()), "yesterday");
    }

    #[test]
    fn every_template_file_is_compiled_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/views");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("views")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut names: Vec<String> = TEMPLATES.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        assert_eq!(
            names, files,
            "a template on disk that the binary does not carry, or the reverse"
        );
    }

    #[test]
    fn every_template_compiles_and_brands_cannot_inject_css() {
        let _ = Views::new();
        let b = Brand {
            partner: "p".into(),
            name: "P".into(),
            support_email: "s@p.example".into(),
            logo_url: Some("javascript:alert(1)".into()),
            primary: "red;}body{display:none".into(),
            accent: "#00ff00".into(),
            show_ferry: false,
        };
        let look = Look::of(Some(&b));
        assert_eq!(look.primary, Look::neutral().primary);
        assert_eq!(look.accent, "#00ff00");
        assert_eq!(look.logo_url, None);
    }
}
