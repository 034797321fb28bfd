use serde_json::json;

use super::*;
use crate::core::document::validate::{Context, validate};
use crate::core::document::{from_str, test_doc};

fn problems(entities: &str) -> Vec<String> {
    match validate(&test_doc(entities), "t.json", &Context::default()) {
        Ok(()) => vec![],
        Err(e) => e
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.pointer, p.reason))
            .collect(),
    }
}

fn pointers(entities: &str) -> Vec<String> {
    problems(entities)
        .into_iter()
        .map(|p| p.split(": ").next().unwrap().to_string())
        .collect()
}

#[test]
fn lengths_at_the_limit_pass_and_one_more_fails() {
    let ok = |s: &str| {
        format!(r#"{{"tools":[{{"name":"t","url":"https://x.example/a","description":"{s}"}}]}}"#)
    };
    assert!(problems(&ok(&"d".repeat(MAX_DESCRIPTION))).is_empty());
    assert_eq!(
        problems(&ok(&"d".repeat(MAX_DESCRIPTION + 1))),
        vec![
            "/entities/tools/0/description: is 8193 characters long; the gateway cuts descriptions to at most 8192"
        ]
    );
    assert!(tool_name_length(&"n".repeat(MAX_TOOL_NAME)).is_ok());
    assert!(tool_name_length(&"n".repeat(MAX_TOOL_NAME + 1)).is_err());
    assert!(plain_name(&"s".repeat(MAX_NAME)).is_ok());
    assert!(plain_name(&"s".repeat(MAX_NAME + 1)).is_err());
    assert!(display_name(&"s".repeat(MAX_NAME + 1)).is_err());
    let u = format!("https://x.example/{}", "p".repeat(MAX_URL - 18));
    assert_eq!(u.len(), MAX_URL);
    assert!(url(&u, &["https"]).is_ok());
    assert!(url(&format!("{u}p"), &["https"]).is_err());
    assert!(template(&"t".repeat(MAX_TEMPLATE_BYTES)).is_ok());
    assert!(template(&"t".repeat(MAX_TEMPLATE_BYTES + 1)).is_err());
    assert!(content(&"c".repeat(MAX_CONTENT_BYTES)).is_ok());
    assert!(content(&"c".repeat(MAX_CONTENT_BYTES + 1)).is_err());
    assert!(resource_uri(&format!("x://{}", "r".repeat(MAX_NAME - 4))).is_ok());
    assert!(resource_uri(&format!("x://{}", "r".repeat(MAX_NAME - 3))).is_err());
}

#[test]
fn tags_the_gateway_would_drop_are_refused() {
    assert!(tag("Public API").is_ok());
    assert!(tag("under_score").is_ok());
    assert!(tag("ns:v1.2").is_ok());
    assert!(tag(&"t".repeat(MAX_TAG)).is_ok());
    for bad in ["x", "-lead", "trail.", "café", "a,b", "semi;colon"] {
        assert!(tag(bad).is_err(), "{bad}");
    }
    assert_eq!(
        pointers(&format!(
            r#"{{"servers":[{{"name":"s","tags":["ok","{}"]}}]}}"#,
            "t".repeat(MAX_TAG + 1)
        )),
        vec!["/entities/servers/0/tags/1"]
    );
}

#[test]
fn names_follow_each_kinds_pattern() {
    // Servers and resources are sent as written: spaces yes, slashes no.
    assert!(plain_name("My Server v1.2").is_ok());
    assert!(plain_name("a/b").is_err());
    assert!(plain_name(" padded").is_err());
    assert_eq!(
        pointers(
            r#"{"servers":[{"name":"a/b"}],"resources":[{"name":"r/1","uri":"docs://r","content":"x"}],
                "tools":[{"name":"café","url":"https://x.example/a"}]}"#
        ),
        vec![
            "/entities/tools/0/name",
            "/entities/resources/0/name",
            "/entities/servers/0/name"
        ]
    );
}

#[test]
fn urls_like_the_gateway() {
    let https = &["http", "https"];
    assert!(url("https://api.example.com:8443/v1?q=a b", https).is_ok());
    for bad in [
        "ftp://x.example/a",
        "https://user:pw@x.example/",
        "https://x.example/a b",
        "https://[::1]/",
        "https://x.example/?next=javascript:alert(1)",
        "https://x.example/%252e",
        "https://x.example:99999/",
        "https://0.0.0.0/",
        "https:///path",
        " https://x.example/",
    ] {
        assert!(url(bad, https).is_err(), "{bad}");
    }
    assert!(resource_uri("docs://ops/runbook?v=1").is_ok());
    for bad in [
        "docs://a b",
        "docs://a#b",
        "docs://../etc",
        "docs://%2e%2e/x",
        "docs://é",
    ] {
        assert!(resource_uri(bad).is_err(), "{bad}");
    }
}

#[test]
fn descriptions_the_gateway_alters_or_refuses() {
    assert!(description("Adds a < b, R&D, 'code'; done.", true).is_ok());
    // Tool descriptions also go through the gateway's malicious-content scan.
    assert!(description("Adds `code`", false).is_ok());
    assert!(description("Adds `code`", true).is_err());
    for bad in [
        "<b>bold</b>",
        "Tom &amp; Jerry",
        "x onclick=1",
        "run a && b",
    ] {
        assert!(description(bad, true).is_err(), "{bad}");
    }
    // Only tool descriptions refuse shell operators.
    assert!(description("a && b", false).is_ok());
}

#[test]
fn templates_the_gateway_refuses() {
    assert!(template("Summarise in {{ max_words }} words:\n{{ text }}").is_ok());
    assert!(template("{% if text %}{{ text }}{% endif %}").is_ok());
    for bad in [
        "{{ user.name }}",
        "{{ a + b }}",
        "{{ x|attr('y') }}",
        "{{ unterminated",
        "cost ${x}",
        "<script>x</script>",
        "pick one && go",
        "please select a file",
        "the condition = x",
    ] {
        assert!(template(bad).is_err(), "{bad}");
    }
}

#[test]
fn json_fields_must_be_objects_and_shallow() {
    assert!(json_object(&json!({"type": "object"})).is_ok());
    assert_eq!(
        json_object(&json!("x")).unwrap_err(),
        "must be a JSON object, not a string"
    );
    let mut deep = json!(1);
    for _ in 0..MAX_JSON_DEPTH {
        deep = json!({ "a": deep });
    }
    assert!(json_object(&deep).is_ok());
    assert!(json_object(&json!({ "a": deep })).is_err());
    assert_eq!(
        pointers(r#"{"tools":[{"name":"t","url":"https://x.example/a","input_schema":[1]}]}"#),
        vec!["/entities/tools/0/input_schema"]
    );
}

#[test]
fn header_lines_cannot_be_forged() {
    assert_eq!(
        pointers(
            r#"{"tools":[{"name":"t","url":"https://x.example/a","headers":{"X-A":"1\r\nX-Evil: 2","Bad Name":"x"}}]}"#
        ),
        vec![
            "/entities/tools/0/headers/Bad Name",
            "/entities/tools/0/headers/X-A"
        ]
    );
    assert!(credentials("bearer", [("Authorization", "Bearer t")].into_iter()).is_ok());
    assert!(credentials("bearer", [("Authorization", "Bearer t\nX: y")].into_iter()).is_err());
    assert!(credentials("authheaders", [("X-Key", "a\rb")].into_iter()).is_err());
    assert!(credentials("authheaders", [("X Key", "a")].into_iter()).is_err());
    assert!(credentials("basic", [("Authorization", "Bearer t")].into_iter()).is_err());
    let many: Vec<(String, String)> = (0..=MAX_AUTH_HEADERS)
        .map(|i| (format!("X-{i}"), "v".to_string()))
        .collect();
    assert!(
        credentials(
            "authheaders",
            many.iter().map(|(k, v)| (k.as_str(), v.as_str()))
        )
        .is_err()
    );
}

#[test]
fn encrypted_credentials_with_line_breaks_are_refused_when_decrypted() {
    let secret = crate::core::secrets::Secret::new("k");
    let enc = secret
        .encrypt_headers(&[("X-Api-Key".into(), "v\r\nX-Evil: 1".into())])
        .unwrap();
    let doc = from_str(
        &format!(
            r#"{{"version":"1","entities":{{"gateways":[{{"name":"g","url":"https://x.example/mcp","auth_type":"authheaders","auth_value":"{enc}"}}]}}}}"#
        ),
        None,
        "t.json",
    )
    .unwrap();
    let err = validate(
        &doc,
        "t.json",
        &Context {
            secret: Some(&secret),
            live: None,
        },
    )
    .unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].pointer, "/entities/gateways/0/auth_value");
    // The message names the header, never its value.
    assert!(!err.to_string().contains("Evil"), "{err}");
}

#[test]
fn type_errors_name_the_pointer_and_what_was_expected() {
    let err = from_str(
        r#"{"version":"1","entities":{"tools":[{"name":"t","url":"https://x.example/a","visibility":5}]}}"#,
        None,
        "v.json",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"v.json: /entities/tools/0/visibility: invalid type: integer `5`, expected one of "public", "team", "private""#
    );
    let err = from_str(
        r#"{"version":"1","entities":{"servers":[{"name":"s","visibility":"everyone"}]}}"#,
        None,
        "v.json",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"v.json: /entities/servers/0/visibility: 'everyone' is not one of "public", "team", "private""#
    );
    let err = from_str(
        "version: '1'\nentities:\n  prompts:\n    - name: p\n      template: x\n      tags: [3]\n",
        None,
        "v.yaml",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"v.yaml: /entities/prompts/0/tags/0: a tag must be a string (or an {"id", "label"} object)"#
    );
}

#[test]
fn huge_and_hostile_values_give_short_safe_messages() {
    let big = "n".repeat(10 * 1024 * 1024);
    let json = format!(
        r#"{{"version":"1","entities":{{"tools":[{{"name":"{big}","url":"https://x.example/a"}},{{"name":"a\nerror: forged\u001b[2J","url":"https://x.example/b"}}]}}}}"#
    );
    let doc = from_str(&json, None, "t.json").unwrap();
    let msg = validate(&doc, "t.json", &Context::default())
        .unwrap_err()
        .to_string();
    assert!(msg.len() < 1000, "{} bytes", msg.len());
    assert!(msg.contains("is 10485760 characters long"), "{msg}");
    assert!(!msg.contains('\u{1b}'), "{msg}");
    assert!(!msg.contains("\nerror: forged"), "{msg}");
    // A file whose whole content becomes one YAML string is not repeated in full.
    let err = from_str(&format!("{big}\n"), None, "link.yaml").unwrap_err();
    assert!(err.to_string().len() < 1000, "{}", err.to_string().len());
}
