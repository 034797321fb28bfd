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
