//! Writes the canonical model's JSON Schema to `schema/canon.v1.schema.json`
//! (`make schema`), or prints it with `--stdout`.

fn main() -> std::io::Result<()> {
    let text = ferry_canon::schema::export();
    if std::env::args().any(|a| a == "--stdout") {
        print!("{text}");
        return Ok(());
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/canon.v1.schema.json");
    std::fs::write(path, text)?;
    eprintln!("wrote {path}");
    Ok(())
}
