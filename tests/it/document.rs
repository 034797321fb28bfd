//! Reading ContextForge's own documents, and the committed JSON Schema.

use crate::common;

use mcp_gitops::core::document::{self, Format, validate::Context};
use mcp_gitops::core::kind::Kind;

#[test]
fn reads_every_contextforge_sample() {
    let data = common::root().join("tests/data");
    let cases = [
        ("cf-export-cli-full.json", None),
        ("cf-export-api-selective.json", None),
        ("cf-export-cli-tools-tag-weather.json", Some(Kind::Tool)),
    ];
    for (file, only) in cases {
        let path = data.join(file);
        let doc = document::load_path(&path).unwrap_or_else(|e| panic!("{e}"));
        let raw = common::read_json(&path);
        for kind in Kind::ALL {
            let want = raw["entities"][kind.plural()]
                .as_array()
                .map_or(0, Vec::len);
            assert_eq!(doc.entities.count(kind), want, "{file}: {}", kind.plural());
        }
        if let Some(k) = only {
            assert!(doc.entities.count(k) > 0);
        }
        // tags come out as strings, auth_value null reads as absent
        let written = document::to_string(&doc, Format::Json);
        assert!(
            !written.contains("\"label\""),
            "{file}: tag objects are written as strings"
        );
        document::validate(&doc, file, &Context::default()).unwrap_or_else(|e| panic!("{e}"));
        // YAML round trip reads back the same document
        let yaml = document::to_string(&doc, Format::Yaml);
        assert_eq!(
            document::from_str(&yaml, Some(Format::Yaml), file).unwrap(),
            doc
        );
    }
}

#[test]
fn full_export_sample_keeps_what_matters() {
    let doc =
        document::load_path(&common::root().join("tests/data/cf-export-cli-full.json")).unwrap();
    let tool = doc
        .entities
        .tools
        .iter()
        .find(|t| t.name == "crm-search")
        .unwrap();
    assert_eq!(
        tool.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        vec!["crm"]
    );
    assert_eq!(tool.auth_type.as_deref(), Some("authheaders"));
    assert_eq!(tool.auth_value, None);
    for s in &doc.entities.servers {
        assert!(!s.tool_ids.is_empty() || s.name.is_empty() || s.tool_ids.is_empty());
    }
}

#[test]
fn committed_schema_is_current() {
    let committed =
        std::fs::read_to_string(common::root().join("examples/export-document.schema.json"))
            .expect("examples/export-document.schema.json is committed");
    assert_eq!(
        committed,
        document::schema_json(),
        "the committed schema is stale: run `mcp-gitops schema > examples/export-document.schema.json`"
    );
}

#[test]
fn example_environments_load_and_validate() {
    use mcp_gitops::engine::environment;
    let vars = |v: &str| Some(format!("value-of-{v}.example.com"));
    for env in ["base", "dev", "staging", "prod"] {
        let dir = common::root().join("examples/envs").join(env);
        let e = environment::load_with_vars(&dir, &vars).unwrap_or_else(|e| panic!("{env}: {e}"));
        mcp_gitops::core::document::validate(
            &e.document,
            env,
            &mcp_gitops::core::document::validate::Context::default(),
        )
        .unwrap();
    }
    let dev =
        environment::load_with_vars(&common::root().join("examples/envs/dev"), &vars).unwrap();
    assert_eq!(dev.document.entities.tools.len(), 3);
    assert!(
        dev.document
            .entities
            .tools
            .iter()
            .any(|t| t.url.contains("value-of-WEATHER_HOST"))
    );
    let staging =
        environment::load_with_vars(&common::root().join("examples/envs/staging"), &vars).unwrap();
    assert!(staging.config.prune.enabled);
    let server = &staging.document.entities.servers[0];
    assert_eq!(server.tool_ids.len(), 3, "the patch replaces the list");
}

/// `mcp-gitops validate FILE` without a secret: (exit code, stdout, stderr).
fn validate_offline(name: &str, text: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let out = assert_cmd::Command::cargo_bin("mcp-gitops")
        .unwrap()
        .env_clear()
        .args(["validate", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn validate_refuses_unknown_entity_types() {
    let (code, out, err) = validate_offline(
        "typo.json",
        r#"{"version":"2025-03-26","entities":{"tool":[{"name":"a","url":"https://x.example/a"}]}}"#,
    );
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("typo.json: /entities/tool: unknown entity type 'tool' (did you mean `tools`?); known types: tools, gateways, servers, prompts, resources, roots"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
}

#[test]
fn validate_without_a_secret_refuses_what_import_would() {
    // The shape of ContextForge's documented export (seed 000), placeholders included.
    let (code, out, err) = validate_offline(
        "documented.json",
        r#"{"version":"2025-03-26","exported_at":"2025-01-15T10:30:00Z","exported_by":"admin",
            "source_gateway":"https://gateway.example.com:4444","encryption_method":"AES-256-GCM",
            "entities":{
              "tools":[{"name":"weather_api","url":"https://api.weather.com/v1/current","integration_type":"REST",
                        "request_type":"GET","auth_type":"bearer","auth_value":"encrypted_token_here","tags":["weather","api"]}],
              "gateways":[{"name":"production-east","url":"https://prod-east.gateway.com:4444","auth_type":"basic",
                           "auth_value":"encrypted_credentials_here!","transport":"SSE"}],
              "servers":[{"name":"ai-tools-server","tool_ids":["weather_api","translate_text"],
                          "capabilities":{"tools":{"list_changed":true}}}]},
            "metadata":{"entity_counts":{"tools":1,"gateways":1,"servers":1}}}"#,
    );
    assert_eq!(code, Some(2), "{out}{err}");
    for want in [
        "documented.json: /entities/tools/0/auth_value: too short to be an encrypted credential",
        "documented.json: /entities/gateways/0/auth_value: not valid base64",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}

#[test]
fn validate_reports_what_a_contextforge_export_sets_aside() {
    let text =
        std::fs::read_to_string(common::root().join("tests/data/cf-export-cli-full.json")).unwrap();
    let (code, out, err) = validate_offline("full.json", &text);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("; 1 federated entry set aside)"), "{out}");
    assert!(
        out.contains(
            "  set aside prompt greet (/entities/prompts/0): the document holds an empty template"
        ),
        "{out}"
    );
}

#[test]
fn input_beyond_the_limit_is_refused_with_the_file_and_the_limit() {
    let bin = || {
        let mut c = assert_cmd::Command::cargo_bin("mcp-gitops").unwrap();
        c.env_remove("MCP_GITOPS_MAX_INPUT");
        c
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();
    // validate /dev/zero with a flag; import /dev/zero with the variable (the gateway, which
    // does not listen, is never reached: the document is read first).
    let out = bin()
        .args(["validate", "/dev/zero", "--max-input", "1M"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: /dev/zero: larger than the input limit of 1 MiB (raise it with --max-input or MCP_GITOPS_MAX_INPUT)\n"
    );
    let out = bin()
        .env("MCP_GITOPS_MAX_INPUT", "64K")
        .args([
            "import",
            "/dev/zero",
            "--gateway",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: /dev/zero: larger than the input limit of 64 KiB"),
        "{}",
        stderr(&out)
    );
    // Standard input, and a file within the limit still reads.
    let doc = r#"{"version":"2025-03-26","entities":{}}"#;
    let out = bin()
        .args(["--max-input", "16", "validate", "-"])
        .write_stdin(doc)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: <stdin>: larger than the input limit of 16 bytes"));
    let out = bin()
        .args(["validate", "-", "--max-input", &doc.len().to_string()])
        .write_stdin(doc)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A token file of an environment is bounded the same way.
    let env = tempfile::tempdir().unwrap();
    std::fs::write(
        env.path().join("mcp-gitops.yaml"),
        "gateway: http://127.0.0.1:9\ntoken: {file: /dev/zero}\n",
    )
    .unwrap();
    let out = bin()
        .args(["plan", "--max-input", "1K"])
        .arg(env.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: /dev/zero: larger than the input limit of 1 KiB"),
        "{}",
        stderr(&out)
    );
    let out = bin()
        .args(["validate", "-", "--max-input", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("'lots' is not a size"),
        "{}",
        stderr(&out)
    );
}
