//! The document's JSON Schema, generated from the types (committed under `examples/`).

use super::Document;

/// The JSON Schema of [`Document`], pretty-printed with a final newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Document);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}
