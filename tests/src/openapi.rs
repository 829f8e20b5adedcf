//! Validating exchanges with a vendor against its OpenAPI document (`specs/`):
//! the path and operation exist, every query parameter is one the operation
//! declares, and request and response bodies match their schemas. OpenAPI 3.0's
//! `nullable` is read as JSON Schema's `null` type.

use std::collections::BTreeMap;

use ferry_cli::local::repo_dir;
use serde_json::Value;

/// A vendor's OpenAPI document.
pub struct Spec {
    root: Value,
}

/// One request and its answer, as a simulator recorded it.
pub struct Call<'a> {
    pub method: &'a str,
    /// The path under the API root (`Invoices/abc`, `invoices/7/payments`).
    pub path: &'a str,
    pub query: Option<&'a BTreeMap<String, String>>,
    pub request: Option<&'a Value>,
    pub status: u16,
    pub response: &'a Value,
}

/// `nullable: true` beside a `type` becomes `type: [T, "null"]` everywhere.
fn nullable_as_null(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(t)) = o.get("type").cloned()
            {
                o.insert("type".into(), serde_json::json!([t, "null"]));
                if let Some(Value::Array(e)) = o.get_mut("enum") {
                    e.push(Value::Null);
                }
            }
            o.values_mut().for_each(nullable_as_null);
        }
        Value::Array(a) => a.iter_mut().for_each(nullable_as_null),
        _ => {}
    }
}

impl Spec {
    /// Reads `specs/<rel>` from the repository.
    pub fn load(rel: &str) -> Spec {
        let text =
            std::fs::read_to_string(repo_dir().join("specs").join(rel)).expect("spec readable");
        let mut root: Value = serde_norway::from_str(&text).expect("spec is YAML");
        nullable_as_null(&mut root);
        Spec { root }
    }

    /// The spec path template matching a request path like `Invoices/abc`.
    pub fn path(&self, actual: &str) -> Option<(String, &Value)> {
        let segs: Vec<&str> = actual.split('/').collect();
        self.root["paths"]
            .as_object()?
            .iter()
            .filter_map(|(template, item)| {
                let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
                let fits = t.len() == segs.len()
                    && t.iter()
                        .zip(&segs)
                        .all(|(a, b)| a.starts_with('{') || a == b);
                // A literal segment beats a parameter (`/users/me` over `/users/{userId}`).
                let literal = t.iter().filter(|a| !a.starts_with('{')).count();
                fits.then(|| (literal, template.clone(), item))
            })
            .max_by_key(|(literal, _, _)| *literal)
            .map(|(_, t, item)| (t, item))
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with("#/components/responses/") => self.resolve(
                &self.root["components"]["responses"][&r["#/components/responses/".len()..]],
            ),
            _ => v,
        }
    }

    /// A validator for a schema (inline or `$ref`) with the spec's components in reach.
    pub fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = self.root["components"].clone();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&root)
            .expect("schema compiles")
    }

    pub fn request_schema(&self, op: &Value) -> Option<Value> {
        op.pointer("/requestBody/content/application~1json/schema")
            .cloned()
    }

    /// The schema of the answer with `status`, or of the `default` answer.
    pub fn response_schema(&self, op: &Value, status: u16) -> Option<Value> {
        let responses = &op["responses"];
        let r = match responses.get(status.to_string()) {
            Some(r) => r,
            None => responses.get("default")?,
        };
        self.resolve(r)
            .pointer("/content/application~1json/schema")
            .cloned()
    }

    /// Query parameters the operation (or its path) declares.
    fn query_names(item: &Value, op: &Value) -> Vec<String> {
        [&item["parameters"], &op["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(String::from))
            .collect()
    }

    /// Every way `call` breaks the spec; returns the operation's name
    /// (`GET /time_entries`) when the spec has it.
    pub fn check(&self, call: &Call<'_>) -> (Option<String>, Vec<String>) {
        let mut failures = Vec::new();
        let Some((template, item)) = self.path(call.path) else {
            return (
                None,
                vec![format!("{} {} is not in the spec", call.method, call.path)],
            );
        };
        let name = format!("{} {template}", call.method);
        let op = &item[call.method.to_lowercase()];
        if !op.is_object() {
            return (
                None,
                vec![format!("{name} is not an operation of the spec")],
            );
        }
        if let Some(q) = call.query {
            let known = Self::query_names(item, op);
            for k in q.keys().filter(|k| !known.contains(k)) {
                failures.push(format!("{name}: query parameter {k:?} is not in the spec"));
            }
        }
        if let (Some(body), Some(schema)) = (call.request, self.request_schema(op)) {
            for e in errors(&self.validator(&schema), body) {
                failures.push(format!("request {name}: {e}"));
            }
        }
        match self.response_schema(op, call.status) {
            Some(schema) => {
                for e in errors(&self.validator(&schema), call.response) {
                    failures.push(format!("response {name} {}: {e}", call.status));
                }
            }
            None => failures.push(format!(
                "{name} answered {}, which the spec does not describe",
                call.status
            )),
        }
        (Some(name), failures)
    }
}

pub fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
