//! Strategy and lacking-data decisions of `prepare`, table-driven, no gateway.

use super::*;
use crate::core::document::test_doc as doc;

fn observed(live: &str) -> Observed {
    let document = doc(live);
    let mut ids = HashMap::new();
    for kind in Kind::ALL {
        for k in document.entities.keys(kind) {
            ids.insert(key_of(kind, k), format!("id-{k}"));
        }
    }
    Observed {
        document,
        credentials: CredentialMap::new(),
        unreadable: Vec::new(),
        ids,
        resources: Default::default(),
    }
}

fn steps(desired: &str, live: &str, strategy: Strategy) -> (Vec<String>, Vec<String>) {
    let d = doc(desired);
    let p = prepare(
        &d,
        &CredentialMap::new(),
        &observed(live),
        &Options {
            strategy,
            now_unix: 1700000000,
            ..Options::default()
        },
    );
    let s = p
        .steps
        .iter()
        .map(|s| {
            let a = match &s.action {
                StepAction::Create => "create".to_string(),
                StepAction::Update(c) => format!("update {}", fields(c).join(",")),
                StepAction::Unchanged => "unchanged".into(),
                StepAction::Skip(r) => format!("skip: {r}"),
                StepAction::Delete => "delete".into(),
            };
            format!("{} {} -> {}: {a}", s.kind, s.key, s.target)
        })
        .collect();
    (s, p.conflicts.iter().map(ToString::to_string).collect())
}

const LIVE: &str = r#"{"tools":[{"name":"t","url":"https://a.example/x"}],"roots":[{"uri":"file:///r","name":"r"}]}"#;
const CHANGED: &str = r#"{"tools":[{"name":"t","url":"https://b.example/x"}],"roots":[{"uri":"file:///r/","name":"other"}]}"#;

#[test]
fn strategies() {
    let cases: &[(Strategy, &[&str], &[&str])] = &[
        (
            Strategy::Update,
            &[
                "root file:///r/ -> file:///r/: update name",
                "tool t -> t: update url",
            ],
            &[],
        ),
        (
            Strategy::Skip,
            &[
                "root file:///r/ -> file:///r/: skip: exists and differs (name); --conflict-strategy skip",
                "tool t -> t: skip: exists and differs (url); --conflict-strategy skip",
            ],
            &[],
        ),
        (
            Strategy::Rename,
            &[
                "root file:///r/ -> file:///r/: skip: exists and differs; a root is its URI and cannot be renamed",
                "tool t -> t-imported-1700000000: create",
            ],
            &[],
        ),
        (
            Strategy::Fail,
            &[
                "root file:///r/ -> file:///r/: skip: conflict",
                "tool t -> t: skip: conflict",
            ],
            &["root file:///r/ (name)", "tool t (url)"],
        ),
    ];
    for (strategy, want_steps, want_conflicts) in cases {
        let (s, c) = steps(CHANGED, LIVE, *strategy);
        assert_eq!(s, *want_steps, "{strategy:?}");
        assert_eq!(c, *want_conflicts, "{strategy:?}");
    }
}

#[test]
fn identical_entities_are_never_written_whatever_the_strategy() {
    for strategy in [
        Strategy::Update,
        Strategy::Skip,
        Strategy::Rename,
        Strategy::Fail,
    ] {
        let (s, c) = steps(LIVE, LIVE, strategy);
        assert!(s.iter().all(|s| s.ends_with(": unchanged")), "{s:?}");
        assert!(c.is_empty());
    }
}

#[test]
fn what_the_document_lacks_is_not_invented() {
    let d = doc(r#"{"resources":[{"name":"m","uri":"tiny://motd"}],
            "prompts":[{"name":"greet","template":""}],
            "tools":[{"name":"w","url":"https://w.example/x","auth_type":"basic","auth_value":null}]}"#);
    let p = prepare(
        &d,
        &CredentialMap::new(),
        &observed("{}"),
        &Options::default(),
    );
    let actions: Vec<_> = p.steps.iter().map(|s| (s.kind, &s.action)).collect();
    assert!(matches!(actions[0], (Kind::Tool, StepAction::Create)));
    assert!(
        matches!(actions[1], (Kind::Resource, StepAction::Skip(r)) if r.contains("no content"))
    );
    assert!(
        matches!(actions[2], (Kind::Prompt, StepAction::Skip(r)) if r.contains("empty template"))
    );
    assert_eq!(p.notes.len(), 1);
    assert!(p.notes[0].contains("auth_type basic but carries no credential"));
}

#[test]
fn renamed_names_take_the_gateway_form() {
    assert_eq!(
        renamed(Kind::Tool, "Weather_API", 5),
        "weather-api-imported-5"
    );
    assert_eq!(
        renamed(Kind::Server, "ops-toolkit", 5),
        "ops-toolkit_imported_5"
    );
    assert_eq!(
        renamed(Kind::Resource, "docs://a", 5),
        "docs://a_imported_5"
    );
}
