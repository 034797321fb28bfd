use std::path::Path;

use serde_json::json;

use super::*;
use crate::engine::environment::{CONFIG_FILE, EnvError, load_with_vars};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |v| {
        pairs
            .iter()
            .find(|(k, _)| *k == v)
            .map(|(_, x)| x.to_string())
    }
}

#[test]
fn expand_substitutes_escapes_and_leaves_unterminated_text() {
    let l = vars(&[("A", "x"), ("B", "y")]);
    assert_eq!(expand("no vars", &l), Ok(None));
    assert_eq!(expand("${A}-${B}", &l), Ok(Some("x-y".into())));
    assert_eq!(expand("$${A} ${A}", &l), Ok(Some("${A} x".into())));
    assert_eq!(expand("a ${A} ${open", &l), Ok(Some("a x ${open".into())));
    assert_eq!(expand("${NOPE}", &l), Err("NOPE".into()));
}

#[test]
fn a_yaml_value_with_newlines_stays_one_string() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), CONFIG_FILE, "gateway: http://gw:4444\n");
    write(
        t.path(),
        "tools.yaml",
        "version: '1'\nentities:\n  tools:\n    - name: a\n      url: https://a.example.com\n      description: ${D}\n",
    );
    let d = "x\n    - name: evil\n      url: https://evil.example.com";
    let env = load_with_vars(t.path(), &|v| (v == "D").then(|| d.to_string())).unwrap();
    let tools = &env.document.entities.tools;
    assert_eq!(tools.len(), 1, "{tools:?}");
    assert_eq!(tools[0].description.as_deref(), Some(d));
}

#[test]
fn a_json_value_with_quotes_cannot_rewrite_fields_with_or_without_bases() {
    let t = tempfile::tempdir().unwrap();
    let (base, dev) = (t.path().join("base"), t.path().join("dev"));
    let d = r#"x","url":"https://evil.example.com"#;
    let doc = r#"{"version":"1","entities":{"tools":[{"name":"a","url":"https://a.example.com","description":"${D}"}]}}"#;
    write(&base, CONFIG_FILE, "gateway: http://gw:4444\n");
    write(&base, "tools.json", doc);
    write(
        &dev,
        CONFIG_FILE,
        "gateway: http://gw:4444\nbases: [../base]\n",
    );
    write(&dev, "more.json", &doc.replace("\"a\"", "\"b\""));
    for dir in [&base, &dev] {
        let env = load_with_vars(dir, &|v| (v == "D").then(|| d.to_string())).unwrap();
        for tool in &env.document.entities.tools {
            assert_eq!(tool.url, "https://a.example.com");
            assert_eq!(tool.description.as_deref(), Some(d));
        }
    }
}

#[test]
fn keys_are_substituted_and_unset_variables_name_file_and_pointer() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), CONFIG_FILE, "gateway: http://gw:4444\n");
    write(
        t.path(),
        "tools.json",
        r#"{"version":"1","entities":{"tools":[{"name":"a","url":"https://${HOST}/v1","headers":{"X-${K}":"1"}}]}}"#,
    );
    let env = load_with_vars(t.path(), &vars(&[("HOST", "h.example.com"), ("K", "Env")]));
    let tool = &env.unwrap().document.entities.tools[0];
    assert_eq!(tool.url, "https://h.example.com/v1");
    assert_eq!(tool.headers.as_ref().unwrap()["X-Env"], "1");

    let err = load_with_vars(t.path(), &vars(&[("K", "Env")])).unwrap_err();
    let file = t.path().join("tools.json").display().to_string();
    assert_eq!(
        err.to_string(),
        format!("{file}: /entities/tools/0/url: ${{HOST}} is not set in the environment")
    );
    // A substituted value is never expanded again (validation may still refuse the header
    // name `X-${K}`, but no variable is looked up twice).
    let again = load_with_vars(t.path(), &vars(&[("HOST", "h.example.com"), ("K", "${K}")]));
    assert!(
        !matches!(again, Err(EnvError::Unset { .. })),
        "a value is never expanded again: {:?}",
        again.err()
    );
}

#[test]
fn rename_is_refused_for_environments() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        CONFIG_FILE,
        "gateway: http://gw:4444\nconflict_strategy: rename\n",
    );
    let err = load_with_vars(t.path(), &|_| None).unwrap_err();
    assert!(matches!(err, EnvError::Rename { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("/conflict_strategy: rename is not allowed in an environment"),
        "{err}"
    );
    // A base is an environment too.
    let dev = t.path().join("dev");
    write(&dev, CONFIG_FILE, "gateway: http://gw:4444\nbases: [..]\n");
    assert!(matches!(
        load_with_vars(&dev, &|_| None),
        Err(EnvError::Rename { .. })
    ));
}

#[test]
fn a_base_needs_no_connection_settings_of_its_own() {
    let t = tempfile::tempdir().unwrap();
    let (base, dev) = (t.path().join("base"), t.path().join("dev"));
    write(
        &base,
        CONFIG_FILE,
        "gateway: ${BASE_URL}\ntoken: {env: BASE_TOKEN}\nsecret: {file: '${NOPE}'}\n",
    );
    write(
        &base,
        "tools.yaml",
        "version: '1'\nentities:\n  tools:\n    - {name: a, url: 'https://${HOST}/v1'}\n",
    );
    write(&dev, CONFIG_FILE, "gateway: ${DEV_URL}\nbases: [../base]\n");
    let l = vars(&[("DEV_URL", "http://dev:4444"), ("HOST", "h.example.com")]);
    let env = load_with_vars(&dev, &l).unwrap();
    assert_eq!(env.config.gateway, "http://dev:4444");
    assert_eq!(
        env.document.entities.tools[0].url,
        "https://h.example.com/v1"
    );
    // Its entities still need their variables; loaded on its own it needs its gateway.
    let err = load_with_vars(&dev, &vars(&[("DEV_URL", "http://dev:4444")])).unwrap_err();
    assert!(err.to_string().contains("${HOST} is not set"), "{err}");
    let err = load_with_vars(&base, &l).unwrap_err();
    assert!(err.to_string().contains("${BASE_URL} is not set"), "{err}");
    // A base may leave the gateway out (an environment needs one to connect: `Target::new`).
    write(&base, CONFIG_FILE, "{}\n");
    assert!(load_with_vars(&dev, &l).is_ok());
    assert!(load_with_vars(&base, &l).unwrap().config.gateway.is_empty());
}

#[test]
fn masks_apply_where_values_were_substituted_only() {
    let t = tempfile::tempdir().unwrap();
    let (base, dev) = (t.path().join("base"), t.path().join("dev"));
    write(&base, CONFIG_FILE, "gateway: http://unused\n");
    write(
        &base,
        "tools.yaml",
        "version: '1'\nentities:\n  tools:\n    - {name: prod-tools, url: 'https://${ENV}.example.com', description: '${ENV}', tags: ['${ENV}', prod]}\n    - {name: other, url: 'https://${ENV}.example.com', description: '${ENV}'}\n",
    );
    write(&dev, CONFIG_FILE, "gateway: http://gw\nbases: [../base]\n");
    // The patch replaces other's description with a literal that equals the value.
    write(
        &dev,
        "patch.yaml",
        "entities:\n  tools:\n    - {name: other, description: prod, headers: {X-Env: '${ENV}'}}\n",
    );
    let env = load_with_vars(&dev, &vars(&[("ENV", "prod")])).unwrap();
    let m = &env.masks;
    let value = |field: &str, from: Value, to: Value| FieldChange::Value {
        field: field.into(),
        from,
        to,
    };
    let shown = |key: &str, c: FieldChange| m.change(Kind::Tool, key, &c).to_string();
    assert_eq!(
        shown(
            "prod-tools",
            value(
                "url",
                json!("https://prod2.example.com"),
                json!("https://prod.example.com")
            )
        ),
        r#"url: "https://prod2.example.com" -> "https://${ENV}.example.com""#,
        "the live side and the name are left alone"
    );
    assert_eq!(
        shown(
            "prod-tools",
            value("description", json!("prod-tools"), json!("prod"))
        ),
        r#"description: "prod-tools" -> "${ENV}""#
    );
    assert_eq!(
        shown("other", value("description", json!("x"), json!("prod"))),
        r#"description: "x" -> "prod""#,
        "written as a literal by the patch"
    );
    assert_eq!(
        shown(
            "other",
            value("headers", json!({}), json!({"X-Env": "prod"}))
        ),
        r#"headers: {} -> {"X-Env":"${ENV}"}"#
    );
    let tags = FieldChange::List {
        field: "tags".into(),
        added: vec!["prod".into()],
        removed: vec!["prod-old".into()],
    };
    assert_eq!(shown("prod-tools", tags), "tags +[${ENV}] -[prod-old]");
    assert_eq!(
        shown("unknown", value("url", json!("a"), json!("prod"))),
        r#"url: "a" -> "prod""#
    );
    // Free text: only whole quoted values.
    assert_eq!(
        env.mask("tool prod-tools: 'https://prod.example.com' is not reachable; prod"),
        "tool prod-tools: 'https://${ENV}.example.com' is not reachable; prod"
    );
}
