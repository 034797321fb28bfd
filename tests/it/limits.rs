//! The gateway's limits: a document at every boundary that validation passes is accepted by a
//! real gateway and converges; one past a boundary is refused before any write; hostile values
//! never reach the terminal raw.

use crate::common;

use crate::common::Gateway;
use serde_json::{Value, json};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn write(gw: &Gateway, name: &str, doc: &Value) -> String {
    let path = gw.dir.path().join(name);
    std::fs::write(&path, serde_json::to_string(doc).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

/// `n` characters of `unit` repeated (cut to length).
fn fill(unit: &str, n: usize) -> String {
    unit.repeat(n / unit.len() + 1)[..n].to_string()
}

/// Every entity at the gateway's maximum lengths (names, descriptions, display names, URLs,
/// URIs, tags, template and content sizes, JSON depth).
fn boundary_doc() -> Value {
    let desc = fill("Words, digits 0-9; 'code' and 50% off. ", 8191) + ".";
    let tag = |c: &str| fill(c, 100);
    // 30 levels of nesting: input_schema, properties, 13 x (object, properties), enum.
    let url = format!("http://127.0.0.1:9/{}", fill("path/", 2048 - 19));
    assert_eq!(url.len(), 2048);
    let mut schema = json!({"type": "string", "enum": ["a"]});
    for _ in 0..13 {
        schema = json!({"type": "object", "properties": {"p": schema}});
    }
    let template = format!("{}{{{{ text }}}}", fill("Summarise the text. ", 10240 - 10));
    assert_eq!(template.len(), 10240);
    json!({"version": "2025-03-26", "entities": {
        "tools": [{"name": fill("t", 128), "url": url, "request_type": "POST",
                   "displayName": fill("Display Name ", 254) + "x", "description": desc,
                   "input_schema": {"type": "object", "properties": {"deep": schema}},
                   "tags": [tag("a"), tag("b1"), "Two Words", "under_score", "ns:v1.2"]}],
        "servers": [{"name": fill("Server name ", 254) + "s", "description": desc,
                     "tags": [tag("s")], "tool_ids": [fill("t", 128)]}],
        "prompts": [{"name": fill("p", 255), "description": desc, "template": template,
                     "tags": [tag("p")]}],
        "resources": [{"name": fill("Resource name ", 254) + "r",
                       "uri": format!("docs://{}x", fill("r/", 255 - 8)),
                       "mime_type": "text/plain", "description": desc,
                       "content": fill("Plain content line.\n", 102_399) + ".", "tags": [tag("r")]}],
        "roots": [{"uri": format!("file:///{}", fill("d/", 2048 - 9)) + "x", "name": fill("n", 255)}]
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_at_every_limit_is_accepted_and_converges() {
    let gw = Gateway::start();
    let doc = boundary_doc();
    let file = write(&gw, "limits.json", &doc);
    let import = || {
        gw.cmd()
            .args(["import", &file, "--user", common::ADMIN, "--output", "json"])
            .output()
            .unwrap()
    };
    let v = gw.cmd().args(["validate", &file]).output().unwrap();
    assert!(v.status.success(), "{}", stderr(&v));

    let first = import();
    let report: Value = serde_json::from_str(stdout(&first).trim()).unwrap();
    assert!(first.status.success(), "{report:#}\n{}", stderr(&first));
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    // Nothing was cut or dropped: a second import finds everything identical.
    let second = import();
    let report: Value = serde_json::from_str(stdout(&second).trim()).unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(report["requests"]["writes"], 0, "{report:#}");

    // One past a limit: refused with its pointer, exit 2, nothing written.
    let mut over = doc.clone();
    let d = over["entities"]["tools"][0]["description"]
        .as_str()
        .unwrap()
        .to_string()
        + "x";
    over["entities"]["tools"][0]["description"] = json!(d);
    over["entities"]["servers"][0]["tags"] = json!([fill("s", 101)]);
    let file = write(&gw, "over.json", &over);
    let out = gw
        .cmd()
        .args(["import", &file, "--user", common::ADMIN])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("/entities/tools/0/description: is 8193 characters long"),
        "{err}"
    );
    assert!(err.contains("/entities/servers/0/tags/0"), "{err}");
    let tools = gw.get("/v1/tools?limit=0").await;
    assert_eq!(
        common::description(tools.as_array().unwrap(), &fill("t", 128)).map(|d| d.len()),
        Some(8192)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_validation_passes_the_gateway_accepts_at_the_edges() {
    let gw = Gateway::start();
    // Each entity sits just inside a rule the gateway enforces with a 422.
    let doc = json!({"version": "1", "entities": {
        "tools": [{"name": "edge_tool", "url": "https://127.0.0.1:9/a?x=a%20b", "request_type": "PATCH",
                   "description": "a < b, R&D, 'ls'", "headers": {"X-Trace_Id": "1"},
                   "annotations": {"readOnlyHint": true}}],
        "servers": [{"name": "with space.v1-2_x", "icon": "https://127.0.0.1:9/icon.png",
                     "id": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}],
        "prompts": [{"name": "edge/prompt", "template": "{% if text %}{{ text|upper }}{% endif %} a < b"}],
        "resources": [{"name": "edge resource", "uri": "docs://edge/r?v=1&x={y}", "content": "<b>bold</b> 100%"}]
    }});
    let file = write(&gw, "edges.json", &doc);
    let out = gw
        .cmd()
        .args(["import", &file, "--user", common::ADMIN, "--output", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
}

#[test]
fn huge_and_hostile_values_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let doc = json!({"version": "1", "entities": {"tools": [
        {"name": "n".repeat(10 * 1024 * 1024), "url": "https://x.example/a"},
        {"name": "a\nerror: all good\u{1b}[2J", "url": "https://x.example/b"},
        {"name": "c", "url": "https://x.example/c", "visibility": 5}
    ]}});
    let file = dir.path().join("hostile.json");
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let run = |f: &std::path::Path| {
        assert_cmd::Command::cargo_bin("mcp-gitops")
            .unwrap()
            .args(["validate", f.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let out = run(&file);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in {err:?}"
    );
    assert!(!err.contains("\nerror: all good"), "{err}");
    // The type error comes first (the document does not load): pointer and expected values.
    assert!(
        err.contains(r#"/entities/tools/2/visibility: invalid type: integer `5`, expected one of "public", "team", "private""#),
        "{err}"
    );
    let mut doc = doc;
    doc["entities"]["tools"][2]["visibility"] = json!("team");
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let err = stderr(&run(&file));
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    assert!(
        err.contains("/entities/tools/0/name: is 10485760 characters long"),
        "{err}"
    );
    assert!(err.contains(r"'a\nerror: all good\u{1b}[2J'"), "{err}");
    assert!(!err.chars().any(|c| c.is_control() && c != '\n'), "{err:?}");

    // A symlink to a file that is no document: its content is not printed in full.
    let secret = dir.path().join("notes.txt");
    std::fs::write(&secret, "x".repeat(100_000)).unwrap();
    let link = dir.path().join("linked.yaml");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let err = stderr(&run(&link));
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
}
