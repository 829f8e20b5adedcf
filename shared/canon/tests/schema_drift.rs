//! The checked-in JSON Schema must match what the code generates. To accept a
//! deliberate change, run `cargo run -p ferry-cli -- schema --write` (or `make schema`).

#[test]
fn checked_in_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/canon.v1.schema.json");
    let on_disk = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}; run `make schema`"));
    let generated = ferry_canon::schema::export();
    assert!(
        on_disk == generated,
        "{path} is out of date with the canonical model; run `make schema` and review the diff"
    );
}

#[test]
fn schema_describes_money_amounts_as_strings() {
    let schema: serde_json::Value = serde_json::from_str(&ferry_canon::schema::export()).unwrap();
    let money = &schema["$defs"]["Money"]["properties"]["amount"];
    let decimal = &schema["$defs"]["Decimal"];
    assert_eq!(money["$ref"], "#/$defs/Decimal");
    assert_eq!(decimal["type"], "string");
}
