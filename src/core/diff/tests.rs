//! Table-driven tests of the pure diff.

use super::*;
use crate::core::document::test_doc as doc;
use crate::core::secrets::Credentials;

fn plan(desired: &str, live: &str) -> Vec<String> {
    plan_with(desired, live, &CredentialMap::new(), &CredentialMap::new())
}

fn plan_with(desired: &str, live: &str, dc: &CredentialMap, lc: &CredentialMap) -> Vec<String> {
    let (d, l) = (doc(desired), doc(live));
    diff(
        &Desired {
            document: &d,
            credentials: dc,
        },
        &Live {
            document: &l,
            credentials: lc,
        },
    )
    .changes
    .iter()
    .map(ToString::to_string)
    .collect()
}

#[test]
fn diff_table() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "absent entities are created, in dependency order",
            r#"{"servers":[{"name":"s"}],"tools":[{"name":"t","url":"https://x.example/t"}],"roots":[{"uri":"file:///a"}]}"#,
            r#"{}"#,
            &[
                "+ create root file:///a",
                "+ create tool t",
                "+ create server s",
            ],
        ),
        (
            "server-side noise produces no diff",
            r#"{"tools":[{"name":"Weather_Current","url":"http://127.0.0.1:9/x","request_type":"get","tags":["Public API"]}],
                "gateways":[{"name":"peer","url":"http://127.0.0.1:1/mcp","transport":"streamablehttp"}]}"#,
            r#"{"tools":[{"name":"weather-current","url":"http://localhost:9/x","request_type":"GET","tags":["public-api"],"displayName":"Weather_Current","annotations":{}}],
                "gateways":[{"name":"peer","url":"http://localhost:1/mcp","transport":"STREAMABLEHTTP","capabilities":{"tools":{}}}]}"#,
            &[
                "  unchanged gateway peer",
                "  unchanged tool Weather_Current",
            ],
        ),
        (
            "field-level updates",
            r#"{"tools":[{"name":"t","url":"https://new.example/t","description":"d"}]}"#,
            r#"{"tools":[{"name":"t","url":"https://old.example/t","description":"d"}]}"#,
            &[r#"~ update tool t: url: "https://old.example/t" -> "https://new.example/t""#],
        ),
        (
            "server links are sets: order is no diff, membership is",
            r#"{"servers":[{"name":"ai-tools","tool_ids":["translate","weather"],"prompt_names":["p"]}]}"#,
            r#"{"servers":[{"name":"ai-tools","tool_ids":["weather","legacy"],"prompt_names":["p"],"id":"abc"}]}"#,
            &["~ update server ai-tools: tool_ids +[translate] -[legacy]"],
        ),
        (
            "prompt required flags are the gateway's; descriptions are ours",
            r#"{"prompts":[{"name":"p","template":"{{ a }}","arguments":[{"name":"a","description":"A","required":false}]},
                           {"name":"q","template":"{{ b }}","input_schema":{"properties":{"b":{"description":"new"}}}}]}"#,
            r#"{"prompts":[{"name":"p","template":"{{ a }}","input_schema":{"type":"object","properties":{"a":{"type":"string","description":"A"}},"required":["a"]}},
                           {"name":"q","template":"{{ b }}","input_schema":{"properties":{"b":{"description":"old"}}}}]}"#,
            &[
                "  unchanged prompt p",
                r#"~ update prompt q: input_schema: {"b":"old"} -> {"b":"new"}"#,
            ],
        ),
        (
            "unstated fields are not owned",
            r#"{"resources":[{"name":"r","uri":"docs://r"}]}"#,
            r#"{"resources":[{"name":"r","uri":"docs://r","content":"x","mime_type":"text/plain","description":"d"}]}"#,
            &["  unchanged resource docs://r"],
        ),
        (
            "a resource's name is a field, its URI the identity",
            r#"{"resources":[{"name":"new","uri":"docs://r"}],"roots":[{"uri":"file:///a","name":"b"}]}"#,
            r#"{"resources":[{"name":"old","uri":"docs://r"}],"roots":[{"uri":"file:///a","name":"a"}]}"#,
            &[
                r#"~ update root file:///a: name: "a" -> "b""#,
                r#"~ update resource docs://r: name: "old" -> "new""#,
            ],
        ),
    ];
    for (what, desired, live, want) in cases {
        assert_eq!(plan(desired, live), *want, "{what}");
    }
}

#[test]
fn credentials_are_compared_decrypted_and_never_shown() {
    let d = r#"{"tools":[{"name":"t","url":"https://x.example/t","auth_type":"bearer","auth_value":"enc"}]}"#;
    let creds = |v: &str| -> CredentialMap {
        [(
            (Kind::Tool, "t".to_string()),
            Credentials::from_pairs([("Authorization".into(), v.into())]),
        )]
        .into()
    };
    assert_eq!(
        plan_with(d, d, &creds("Bearer a"), &creds("Bearer a")),
        vec!["  unchanged tool t"]
    );
    let changed = plan_with(d, d, &creds("Bearer CANARY"), &creds("Bearer a"));
    assert_eq!(
        changed,
        vec!["~ update tool t: auth_value: (sensitive value changed)"]
    );
    assert!(!changed[0].contains("CANARY"));
    // a document that states no credentials leaves the live ones alone
    let bare = r#"{"tools":[{"name":"t","url":"https://x.example/t"}]}"#;
    assert_eq!(
        plan_with(bare, d, &CredentialMap::new(), &creds("Bearer a")),
        vec!["  unchanged tool t"]
    );
}

#[test]
fn plans_serialise_for_ci() {
    let (d, l) = (
        doc(r#"{"tools":[{"name":"t","url":"https://x.example/t"}]}"#),
        doc("{}"),
    );
    let none = CredentialMap::new();
    let p = diff(
        &Desired {
            document: &d,
            credentials: &none,
        },
        &Live {
            document: &l,
            credentials: &none,
        },
    );
    assert!(!p.is_empty());
    assert_eq!(
        serde_json::to_value(&p).unwrap(),
        serde_json::json!({"changes": [{"kind": "tool", "key": "t", "op": "create"}]})
    );
}

#[test]
fn plan_lines_have_one_rendering() {
    let changes = ["url: \"a\" -> \"b\"".to_string(), "tags +[x]".to_string()];
    let cases = [
        (LineOp::Create, "+ create tool t"),
        (
            LineOp::Update(&changes),
            "~ update tool t: url: \"a\" -> \"b\"; tags +[x]",
        ),
        (LineOp::Delete, "- delete tool t"),
        (LineOp::Skip("federated"), "  skip tool t: federated"),
        (LineOp::Unchanged, "  unchanged tool t"),
    ];
    for (op, want) in cases {
        assert_eq!(plan_line(Kind::Tool, "t", op), want);
    }
}
