//! Unit tests of `validate`.

use super::*;
use crate::core::document::from_str;

fn problems(json: &str) -> Vec<String> {
    let doc = from_str(json, None, "t.json").unwrap();
    match validate(&doc, "t.json", &Context::default()) {
        Ok(()) => vec![],
        Err(e) => e
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.pointer, p.reason))
            .collect(),
    }
}

#[test]
fn slugify_matches_the_gateway() {
    for (input, want) in [
        ("Weather_Current", "weather-current"),
        ("github-create-issue", "github-create-issue"),
        ("a  b", "a-b"),
        ("v1.2/x", "v1-2-x"),
        ("don't stop", "dont-stop"),
        ("user@example.com", "user-example-com"),
    ] {
        assert_eq!(slugify(input), want, "{input}");
    }
}

#[test]
fn names_follow_the_gateway_charset() {
    assert!(check_name("weather_api-v2.1/x").is_ok());
    assert!(check_name("_x").is_ok());
    assert!(check_name("").is_err());
    assert!(check_name("-x").is_err());
    assert_eq!(
        check_name("two words").unwrap_err(),
        "'two words' contains ' '; names may hold letters, digits and . _ - / only"
    );
}

#[test]
fn root_uris() {
    assert!(check_root_uri("file:///data/shared").is_ok());
    assert!(check_root_uri("https://example.com/repo").is_ok());
    assert!(check_root_uri("/data").is_err());
    assert!(check_root_uri("https://u:p@example.com/").is_err());
    assert!(check_root_uri("https://example.com/?q=1").is_err());
}

#[test]
fn reports_every_problem_with_its_pointer() {
    let got = problems(
        r#"{"version":"1","entities":{
          "tools":[{"name":"ok","url":"https://a.example/x"},{"name":"bad name","url":"ftp://x","request_type":"FETCH"},{"name":"OK","url":"https://a.example/y"}],
          "resources":[{"name":"r","uri":"x://r","mime_type":"text/csv"}],
          "roots":[{"uri":"nope"}],
          "prompts":[{"name":"p q","template":"Hi"}]}}"#,
    );
    assert_eq!(
        got,
        vec![
            "/entities/tools/1/name: 'bad name' contains ' '; names may hold letters, digits and . _ - / only",
            "/entities/tools/1/url: 'ftp://x' is not an http(s) URL",
            "/entities/tools/1/request_type: 'FETCH' is not one of GET, POST, PUT, DELETE, PATCH",
            "/entities/prompts/0/name: 'p q' contains ' '; names may hold letters, digits and . _ - / only",
            "/entities/resources/0/mime_type: 'text/csv' is not a MIME type the gateway accepts (text/plain, text/html, text/css, text/markdown, text/javascript, application/json, application/xml, application/pdf, image/png, image/jpeg, image/gif, image/svg+xml, application/octet-stream)",
            "/entities/roots/0/uri: 'nope' has no scheme (file://, https://, ...)",
            "/entities/tools/2: duplicate tool 'OK' (also at /entities/tools/0)",
        ]
    );
}

#[test]
fn references_must_resolve_when_the_gateway_is_known() {
    let doc = from_str(
        r#"{"version":"1","entities":{"tools":[{"name":"a","url":"https://x.example/a"}],
           "servers":[{"name":"s","tool_ids":["a","peer-echo","missing"],"prompt_names":["p"]}]}}"#,
        None,
        "t.json",
    )
    .unwrap();
    let live: HashSet<(Kind, String)> = [(Kind::Tool, "peer-echo".to_string())].into();
    let err = validate(
        &doc,
        "t.json",
        &Context {
            secret: None,
            live: Some(&live),
        },
    )
    .unwrap_err();
    let got: Vec<_> = err.problems.iter().map(|p| p.pointer.as_str()).collect();
    assert_eq!(
        got,
        vec![
            "/entities/servers/0/tool_ids/2",
            "/entities/servers/0/prompt_names/0"
        ]
    );
}

#[test]
fn credentials_are_checked_without_the_key() {
    let enc = Secret::new("k")
        .encrypt_headers(&[("Authorization".into(), "Bearer x".into())])
        .unwrap();
    let got = problems(&format!(
        r#"{{"version":"1","entities":{{
          "tools":[{{"name":"a","url":"https://x.example/a","auth_type":"bearer","auth_value":"not base64!"}},
                   {{"name":"b","url":"https://x.example/b","auth_type":"bearer","auth_value":"c2hvcnQ"}},
                   {{"name":"c","url":"https://x.example/c","auth_value":"{enc}"}},
                   {{"name":"d","url":"https://x.example/d","auth_type":"bearer","auth_value":"{enc}"}},
                   {{"name":"e","url":"https://x.example/e","auth_type":"bearer","auth_value":null}}],
          "gateways":[{{"name":"g","url":"https://p.example/mcp","auth_type":"basic","auth_value":"%%%"}}]}}}}"#
    ));
    assert_eq!(
        got,
        vec![
            "/entities/tools/0/auth_value: not valid base64",
            "/entities/tools/1/auth_value: too short to be an encrypted credential",
            "/entities/tools/2/auth_type: missing: the document carries an auth_value but no auth_type (basic, bearer or authheaders) to apply it with",
            "/entities/gateways/0/auth_value: not valid base64",
        ]
    );
    // With the key, the same problems once each (no second "cannot be decrypted").
    let doc = from_str(
        r#"{"version":"1","entities":{"tools":[{"name":"a","url":"https://x.example/a","auth_type":"bearer","auth_value":"c2hvcnQ"}]}}"#,
        None,
        "t.json",
    )
    .unwrap();
    let key = Secret::new("k");
    let err = validate(
        &doc,
        "t.json",
        &Context {
            secret: Some(&key),
            live: None,
        },
    )
    .unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
}

#[test]
fn federated_entries_are_neither_checked_nor_duplicates() {
    let got = problems(
        r#"{"version":"1","entities":{
          "prompts":[{"name":"greet","template":""},{"name":"greet","template":""},
                     {"name":"greet","template":"Hello {{ name }}"},{"name":"bad name","template":"","gateway_name":"p"}],
          "resources":[{"name":"m","uri":"tiny://motd"},{"name":"m","uri":"tiny://motd","mime_type":"text/csv"}]}}"#,
    );
    assert!(got.is_empty(), "{got:?}");
    // Two local prompts of one name still are.
    let got = problems(
        r#"{"version":"1","entities":{"prompts":[{"name":"greet","template":"a"},{"name":"greet","template":"b"}]}}"#,
    );
    assert_eq!(
        got,
        vec!["/entities/prompts/1: duplicate prompt 'greet' (also at /entities/prompts/0)"]
    );
}

#[test]
fn credentials_must_decrypt() {
    let right = Secret::new("right");
    let wrong = Secret::new("wrong");
    let enc = right
        .encrypt_headers(&[("Authorization".into(), "Bearer x".into())])
        .unwrap();
    let json = format!(
        r#"{{"version":"1","entities":{{"tools":[{{"name":"a","url":"https://x.example/a","auth_type":"bearer","auth_value":"{enc}"}}]}}}}"#
    );
    let doc = from_str(&json, None, "t.json").unwrap();
    assert!(
        validate(
            &doc,
            "t.json",
            &Context {
                secret: Some(&right),
                live: None
            }
        )
        .is_ok()
    );
    let err = validate(
        &doc,
        "t.json",
        &Context {
            secret: Some(&wrong),
            live: None,
        },
    )
    .unwrap_err();
    assert_eq!(err.problems[0].pointer, "/entities/tools/0/auth_value");
}
