use super::*;
use crate::core::document::from_str;

fn doc() -> Document {
    from_str(
        r#"{"version":"1","entities":{
          "tools":[{"name":"weather_api","url":"https://x.example/w","tags":["Weather"]},
                   {"name":"translate","url":"https://x.example/t"},
                   {"name":"old","url":"https://x.example/o","is_active":false}],
          "gateways":[{"name":"peer-one","url":"http://localhost:1/mcp"}],
          "servers":[{"name":"ai-server","tool_ids":["translate","peer-one-echo"],"prompt_names":["sum"]},
                     {"name":"other","tool_ids":["weather_api"]}],
          "prompts":[{"name":"sum","template":"{{ x }}"}],
          "roots":[{"uri":"file:///workspace","name":"workspace"}]}}"#,
        None,
        "t",
    )
    .unwrap()
}

fn names(d: &Document) -> Vec<String> {
    Kind::DISPLAY
        .iter()
        .flat_map(|k| {
            d.entities
                .keys(*k)
                .into_iter()
                .map(move |n| format!("{k}:{n}"))
        })
        .collect()
}

#[test]
fn include_forms() {
    let a = IncludeSpec::parse("tools:weather_api,translate;servers:ai-*").unwrap();
    assert!(a.matches(Kind::Tool, "translate") && a.matches(Kind::Tool, "weather_api"));
    assert!(
        a.matches(Kind::Tool, "weather-api"),
        "slug form matches too"
    );
    assert!(a.matches(Kind::Server, "ai-server") && !a.matches(Kind::Server, "other"));
    let b = IncludeSpec::parse("tool:*,server:ai-*,root:workspace").unwrap();
    assert!(b.matches(Kind::Tool, "anything") && b.matches(Kind::Root, "workspace"));
    let c = IncludeSpec::parse("roots:file:///data/*,https://example.com/*").unwrap();
    assert!(c.matches(Kind::Root, "https://example.com/repo"));
    assert_eq!(
        IncludeSpec::parse("widgets:x").unwrap_err(),
        IncludeError::Kind(UnknownKind("widgets".into()))
    );
    assert_eq!(
        IncludeSpec::parse("weather").unwrap_err(),
        IncludeError::NoKind("weather".into())
    );
    assert!(matches!(
        IncludeSpec::parse("tools:[").unwrap_err(),
        IncludeError::Glob(..)
    ));
    assert_eq!(IncludeSpec::parse(" ; ").unwrap_err(), IncludeError::Empty);
}

#[test]
fn selection_table() {
    let d = doc();
    let cases: Vec<(Selection, Vec<&str>)> = vec![
        (
            Selection {
                dependencies: true,
                ..Default::default()
            },
            vec![
                "tool:translate",
                "tool:weather_api",
                "gateway:peer-one",
                "server:ai-server",
                "server:other",
                "prompt:sum",
                "root:file:///workspace",
            ],
        ),
        (
            Selection {
                include_inactive: true,
                types: Some(vec![Kind::Tool]),
                ..Default::default()
            },
            vec!["tool:weather_api", "tool:translate", "tool:old"],
        ),
        (
            Selection {
                include: Some(IncludeSpec::parse("servers:ai-*").unwrap()),
                dependencies: true,
                ..Default::default()
            },
            vec![
                "tool:translate",
                "gateway:peer-one",
                "server:ai-server",
                "prompt:sum",
            ],
        ),
        (
            Selection {
                include: Some(IncludeSpec::parse("servers:ai-*").unwrap()),
                dependencies: false,
                ..Default::default()
            },
            vec!["server:ai-server"],
        ),
        (
            Selection {
                types: Some(vec![Kind::Server]),
                exclude_types: vec![Kind::Gateway],
                dependencies: true,
                ..Default::default()
            },
            vec![
                "tool:translate",
                "tool:weather_api",
                "server:ai-server",
                "server:other",
                "prompt:sum",
            ],
        ),
        (
            Selection {
                tags: vec!["weather".into()],
                dependencies: true,
                ..Default::default()
            },
            vec!["tool:weather_api"],
        ),
    ];
    for (i, (sel, want)) in cases.into_iter().enumerate() {
        let got = select(&d, &sel);
        let mut g = names(&got.document);
        let mut w: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        g.sort();
        w.sort();
        assert_eq!(g, w, "case {i}");
        assert_eq!(got.skipped, d.entities.total() - w.len(), "case {i}");
    }
}

#[test]
fn exact_names_match_only_themselves() {
    let spec =
        IncludeSpec::exact([(Kind::Tool, "weather_*"), (Kind::Root, "file:///a,b")]).unwrap();
    assert!(spec.matches(Kind::Tool, "weather_*"));
    assert!(!spec.matches(Kind::Tool, "weather_api"));
    assert!(spec.matches(Kind::Root, "file:///a,b"));
    assert!(!spec.matches(Kind::Server, "weather_*"));
    assert!(IncludeSpec::exact([]).is_err());
}

/// Servers whose names are patterns and lists, and one of the same slug.
fn tricky() -> Document {
    from_str(
        r#"{"version":"1","entities":{
          "tools":[{"name":"alpha","url":"https://x.example/a"},
                   {"name":"beta","url":"https://x.example/b"}],
          "servers":[{"name":"ops,core","tool_ids":["alpha","beta"]},
                     {"name":"ops"},{"name":"core"},{"name":"ops-core"},
                     {"name":"team*","tool_ids":["alpha"]},{"name":"team-a"},
                     {"name":"idle","is_active":false}]}}"#,
        None,
        "t",
    )
    .unwrap()
}

fn picked(keys: &[(Kind, &str)], deps: bool) -> Selection {
    Selection::picked(
        keys.iter().map(|(k, n)| (*k, n.to_string())).collect(),
        deps,
    )
}

#[test]
fn picked_entities_are_kept_exactly_and_their_dependencies_reported_apart() {
    let d = tricky();
    let got = select(&d, &picked(&[(Kind::Server, "ops,core")], true));
    let mut n = names(&got.document);
    n.sort();
    assert_eq!(n, ["server:ops,core", "tool:alpha", "tool:beta"]);
    let added: Vec<Key> = got.added.into_iter().collect();
    assert_eq!(
        added,
        [(Kind::Tool, "alpha".into()), (Kind::Tool, "beta".into())]
    );

    let got = select(&d, &picked(&[(Kind::Server, "ops,core")], false));
    assert_eq!(names(&got.document), ["server:ops,core"], "not ops-core");
    assert!(got.added.is_empty());

    let got = select(&d, &picked(&[(Kind::Server, "team*")], false));
    assert_eq!(names(&got.document), ["server:team*"]);

    // A tool picked with the server it depends on is chosen, not added.
    let got = select(
        &d,
        &picked(&[(Kind::Server, "team*"), (Kind::Tool, "alpha")], true),
    );
    assert_eq!(names(&got.document), ["tool:alpha", "server:team*"]);
    assert!(got.added.is_empty());

    // Picked means active or not; a key the document lacks picks nothing.
    let got = select(&d, &picked(&[(Kind::Server, "idle")], true));
    assert_eq!(names(&got.document), ["server:idle"]);
    let got = select(&d, &picked(&[(Kind::Server, "nope")], true));
    assert_eq!(got.document.entities.total(), 0);
}

#[test]
fn filters_report_the_dependencies_they_add() {
    let d = doc();
    let sel = Selection {
        include: Some(IncludeSpec::parse("servers:ai-*").unwrap()),
        dependencies: true,
        ..Default::default()
    };
    let added: Vec<String> = select(&d, &sel)
        .added
        .into_iter()
        .map(|(k, n)| format!("{k}:{n}"))
        .collect();
    assert_eq!(added, ["gateway:peer-one", "tool:translate", "prompt:sum"]);
}
