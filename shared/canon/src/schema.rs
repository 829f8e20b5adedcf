//! JSON Schema export of the canonical model. The checked-in copy lives at
//! `shared/canon/schema/canon.v1.schema.json`; a test fails if it drifts.

use schemars::JsonSchema;

use crate::domain::CanonicalRecord;

/// The model's major version; bump it (and the file name) on a breaking change.
pub const MODEL_VERSION: &str = "v1";

/// The checked-in schema (`schema/canon.v1.schema.json`), which a test keeps
/// equal to [`export`]: what templates are checked against at load.
pub const CHECKED_IN: &str = include_str!("../schema/canon.v1.schema.json");

/// Schema stand-in for `Decimal` fields: always a string, never a JSON number,
/// so no reader is tempted to parse money as a float.
pub struct DecimalString;

impl JsonSchema for DecimalString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Decimal".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]+)?$",
            "description": "exact decimal number, serialised as a string"
        })
    }
}

/// The JSON Schema of [`CanonicalRecord`], pretty-printed with a trailing newline.
pub fn export() -> String {
    let mut schema = schemars::schema_for!(CanonicalRecord);
    schema.insert(
        "$id".into(),
        format!("https://ferry.dev/schema/canon.{MODEL_VERSION}.schema.json").into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).expect("schema serialises");
    text.push('\n');
    text
}
