//! The whole apply path (ready, prune, owner, execute) against the in-memory gateway:
//! dependency levels, dependents of a failure, strategies, cancellation, prune order, and
//! convergence after a partial failure. Milliseconds each.

use super::*;
use crate::core::document::test_doc as doc;
use crate::gateway::fake::{Fail, FakeGateway, Op};
use serde_json::json;

const NOW: u64 = 1700000000;

fn opts(strategy: Strategy) -> Options {
    Options {
        strategy,
        now_unix: NOW,
        discovery_timeout: Duration::ZERO,
        ..Options::default()
    }
}

async fn run_with(
    gw: &FakeGateway,
    desired: &Document,
    opts: &Options,
    prune: Option<&PrunePolicy>,
) -> Result<Report, ReadyError> {
    let mut r = ready(gw, desired, desired, "doc", &Keys::default(), opts).await?;
    if let Some(p) = prune {
        let deletes = prune::deletes(desired, &r.observed, p).expect("prune allowed");
        r.prepared.steps.extend(deletes);
    }
    let owner = owner(gw, &r.prepared, opts).await?;
    let desired = diff::Desired {
        document: desired,
        credentials: &r.credentials,
    };
    Ok(execute(gw, &desired, &r.observed, &r.prepared, opts, owner, None).await)
}

async fn run(gw: &FakeGateway, desired: &Document) -> Report {
    run_with(gw, desired, &opts(Strategy::Update), None)
        .await
        .expect("ready")
}

fn outcome<'a>(r: &'a Report, kind: Kind, name: &str) -> &'a Outcome {
    &r.results
        .iter()
        .find(|x| x.kind == kind && x.name == name)
        .unwrap_or_else(|| panic!("no result for {kind} {name}: {:?}", r.results))
        .outcome
}

fn everything() -> Document {
    doc(&json!({
        "roots": [{"uri": "file:///data", "name": "data"}],
        "gateways": [{"name": "peer", "url": "http://peer.example/sse"}],
        "tools": [
            {"name": "t1", "url": "http://api.example/1"},
            {"name": "t2", "url": "http://api.example/2"}
        ],
        "resources": [{"uri": "docs://readme", "name": "readme", "content": "hello"}],
        "prompts": [{"name": "greet", "template": "Hello {{ who }}"}],
        "servers": [{
            "name": "s",
            "associated_tools": ["t1", "t2"],
            "resource_uris": ["docs://readme"],
            "prompt_names": ["greet"]
        }]
    })
    .to_string())
}

#[tokio::test]
async fn entities_are_written_in_dependency_levels_and_a_rerun_writes_nothing() {
    let gw = FakeGateway::new();
    gw.set_team("team-1");
    let report = run(&gw, &everything()).await;
    assert_eq!(report.failed(), 0, "{:?}", report.results);
    let level = |op: &Op| match op {
        Op::Create(k, _) => Kind::ALL.iter().position(|x| x == k).unwrap(),
        other => panic!("unexpected write {other:?}"),
    };
    let writes = gw.writes();
    assert_eq!(writes.len(), 7, "{writes:?}");
    let levels: Vec<usize> = writes.iter().map(level).collect();
    assert!(levels.is_sorted(), "{writes:?}");
    assert_eq!(writes.last(), Some(&Op::Create(Kind::Server, "s".into())));
    // The server links the ids the gateway gave its tools, resource and prompt.
    let server = gw.get(Kind::Server, "s").unwrap();
    let id = |k, key| gw.get(k, key).unwrap()["id"].clone();
    assert_eq!(
        server["associatedToolIds"],
        json!([id(Kind::Tool, "t1"), id(Kind::Tool, "t2")])
    );
    assert_eq!(
        server["associatedResources"],
        json!([id(Kind::Resource, "docs://readme")])
    );
    assert_eq!(server["teamId"], "team-1");

    gw.clear_log();
    let again = run(&gw, &everything()).await;
    assert_eq!(gw.writes(), Vec::<Op>::new());
    assert_eq!(again.count(None, Verb::Unchanged), 7);
    // The content marker vouches for the resource's content: it is not read again.
    assert!(!gw.log().iter().any(|o| matches!(o, Op::ReadContent(_))));
}

#[tokio::test]
async fn dependents_of_a_failure_are_skipped_naming_it_then_a_rerun_converges() {
    let gw = FakeGateway::new();
    gw.fail(
        Op::Create(Kind::Tool, "t1".into()),
        Fail::Status(500, "boom".into()),
    );
    gw.fail(
        Op::Create(Kind::Prompt, "greet".into()),
        Fail::Status(400, "bad template".into()),
    );
    let report = run(&gw, &everything()).await;
    assert_eq!(
        outcome(&report, Kind::Tool, "t1"),
        &Outcome::Failed {
            error: "500 boom".into(),
            status: Some(500),
            class: crate::core::error::ErrorClass::GatewayBusy,
        },
        "a per-entity failure keeps the gateway's status and message, classified"
    );
    assert!(matches!(
        outcome(&report, Kind::Prompt, "greet"),
        Outcome::Failed {
            status: Some(400),
            class: crate::core::error::ErrorClass::Failed,
            ..
        }
    ));
    assert_eq!(outcome(&report, Kind::Tool, "t2"), &Outcome::Created);
    let Outcome::Skipped { reason } = outcome(&report, Kind::Server, "s") else {
        panic!("server not skipped: {:?}", report.results);
    };
    assert!(
        reason.contains("tool t1") && reason.contains("500 boom"),
        "{reason}"
    );
    assert!(!gw.writes().contains(&Op::Create(Kind::Server, "s".into())));

    // Once the gateway takes them, a rerun writes exactly what is missing, then nothing.
    gw.heal();
    gw.clear_log();
    let second = run(&gw, &everything()).await;
    assert_eq!(second.failed(), 0, "{:?}", second.results);
    assert_eq!(
        gw.writes(),
        vec![
            Op::Create(Kind::Tool, "t1".into()),
            Op::Create(Kind::Prompt, "greet".into()),
            Op::Create(Kind::Server, "s".into()),
        ]
    );
    gw.clear_log();
    run(&gw, &everything()).await;
    assert_eq!(gw.writes(), Vec::<Op>::new());
}

fn seeded() -> FakeGateway {
    let gw = FakeGateway::new();
    gw.insert(
        Kind::Tool,
        json!({"name": "t", "url": "http://a.example/t"}),
    );
    gw.insert(
        Kind::Tool,
        json!({"name": "u", "url": "http://a.example/u"}),
    );
    gw
}

fn changed() -> Document {
    doc(&json!({"tools": [
        {"name": "t", "url": "http://b.example/t"},
        {"name": "u", "url": "http://b.example/u"},
        {"name": "n", "url": "http://b.example/n"}
    ]})
    .to_string())
}

#[tokio::test]
async fn strategy_update_writes_the_changed_fields() {
    let gw = seeded();
    let report = run_with(&gw, &changed(), &opts(Strategy::Update), None)
        .await
        .unwrap();
    assert_eq!(report.updated_fields(Kind::Tool), ["url"]);
    assert_eq!(
        gw.get(Kind::Tool, "t").unwrap()["url"],
        "http://b.example/t"
    );
    assert_eq!(gw.get(Kind::Tool, "t").unwrap()["version"], 2);
}

#[tokio::test]
async fn strategy_skip_leaves_what_differs() {
    let gw = seeded();
    let report = run_with(&gw, &changed(), &opts(Strategy::Skip), None)
        .await
        .unwrap();
    let Outcome::Skipped { reason } = outcome(&report, Kind::Tool, "t") else {
        panic!("{:?}", report.results)
    };
    assert!(reason.contains("--conflict-strategy skip"), "{reason}");
    assert_eq!(gw.writes(), vec![Op::Create(Kind::Tool, "n".into())]);
    assert_eq!(
        gw.get(Kind::Tool, "t").unwrap()["url"],
        "http://a.example/t"
    );
}

#[tokio::test]
async fn strategy_fail_refuses_before_any_write_listing_every_conflict() {
    let gw = seeded();
    let err = run_with(&gw, &changed(), &opts(Strategy::Fail), None)
        .await
        .unwrap_err();
    let ReadyError::Conflicts(c) = &err else {
        panic!("{err}")
    };
    let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["t", "u"]);
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert_eq!(gw.writes(), Vec::<Op>::new());
}

#[tokio::test]
async fn strategy_rename_creates_a_copy_and_keeps_the_original() {
    let gw = seeded();
    let report = run_with(&gw, &changed(), &opts(Strategy::Rename), None)
        .await
        .unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.results);
    let copy = renamed(Kind::Tool, "t", NOW);
    assert!(gw.writes().contains(&Op::Create(Kind::Tool, copy.clone())));
    assert_eq!(
        gw.get(Kind::Tool, &copy).unwrap()["url"],
        "http://b.example/t"
    );
    assert_eq!(
        gw.get(Kind::Tool, "t").unwrap()["url"],
        "http://a.example/t"
    );
    assert!(!gw.writes().iter().any(|w| matches!(w, Op::Update(..))));
}

#[tokio::test]
async fn cancellation_stops_starting_new_writes() {
    let gw = FakeGateway::new();
    let o = Options {
        parallelism: 1,
        ..opts(Strategy::Update)
    };
    let cancel = o.cancel.clone();
    gw.after_write(move |_| cancel.cancel());
    let desired = doc(&json!({"tools": [
        {"name": "a", "url": "http://x/a"},
        {"name": "b", "url": "http://x/b"},
        {"name": "c", "url": "http://x/c"}
    ]})
    .to_string());
    let report = run_with(&gw, &desired, &o, None).await.unwrap();
    assert_eq!(gw.writes(), vec![Op::Create(Kind::Tool, "a".into())]);
    assert_eq!(report.count(None, Verb::Create), 1);
    for name in ["b", "c"] {
        assert_eq!(
            outcome(&report, Kind::Tool, name),
            &Outcome::Skipped {
                reason: "not started: shutting down".into()
            }
        );
    }
}

#[tokio::test]
async fn prune_deletes_only_what_is_owned_in_reverse_dependency_order() {
    let gw = FakeGateway::new();
    let marker = "mcp-gitops:dev";
    let old = gw.insert(
        Kind::Tool,
        json!({"name": "old", "url": "http://x/old", "tags": [marker]}),
    );
    gw.insert(
        Kind::Server,
        json!({"name": "old-s", "tags": [marker], "associatedToolIds": [old]}),
    );
    gw.insert(Kind::Tool, json!({"name": "hand", "url": "http://x/h"}));
    gw.insert(
        Kind::Tool,
        json!({"name": "other", "url": "http://x/o", "tags": ["mcp-gitops:prod"]}),
    );
    let mut desired = doc(&json!({"tools": [{"name": "keep", "url": "http://x/k"}]}).to_string());
    prune::mark(&mut desired, marker);
    let policy = PrunePolicy {
        marker: marker.into(),
        max_delete_percent: 100,
        allow_mass_delete: true,
    };
    let o = opts(Strategy::Update);
    let report = run_with(&gw, &desired, &o, Some(&policy)).await.unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.results);
    assert_eq!(
        gw.writes(),
        vec![
            Op::Create(Kind::Tool, "keep".into()),
            Op::Delete(Kind::Server, "old-s".into()),
            Op::Delete(Kind::Tool, "old".into()),
        ]
    );
    assert_eq!(gw.keys(Kind::Tool), ["hand", "other", "keep"]);
    assert!(gw.keys(Kind::Server).is_empty());
    // Converged: nothing more to create or delete.
    gw.clear_log();
    run_with(&gw, &desired, &o, Some(&policy)).await.unwrap();
    assert_eq!(gw.writes(), Vec::<Op>::new());
}

#[tokio::test]
async fn prune_waits_for_a_clean_run() {
    let gw = FakeGateway::new();
    let marker = "mcp-gitops:dev";
    gw.insert(
        Kind::Tool,
        json!({"name": "old", "url": "http://x/old", "tags": [marker]}),
    );
    gw.fail(
        Op::Create(Kind::Tool, "keep".into()),
        Fail::Status(500, "down".into()),
    );
    let mut desired = doc(&json!({"tools": [{"name": "keep", "url": "http://x/k"}]}).to_string());
    prune::mark(&mut desired, marker);
    let policy = PrunePolicy {
        marker: marker.into(),
        max_delete_percent: 100,
        allow_mass_delete: true,
    };
    let report = run_with(&gw, &desired, &opts(Strategy::Update), Some(&policy))
        .await
        .unwrap();
    assert!(
        matches!(outcome(&report, Kind::Tool, "old"), Outcome::Skipped { reason } if reason.contains("prune waits"))
    );
    assert!(!gw.writes().iter().any(|w| matches!(w, Op::Delete(..))));
}

#[tokio::test]
async fn an_unreachable_gateway_gets_no_write_and_a_later_run_converges() {
    let gw = FakeGateway::new();
    gw.set_unreachable(true);
    let err = run_with(&gw, &everything(), &opts(Strategy::Update), None)
        .await
        .expect_err("unreachable");
    assert!(matches!(err, ReadyError::Gateway(_)), "{err}");
    assert_eq!(gw.writes(), Vec::<Op>::new());
    gw.heal();
    assert_eq!(run(&gw, &everything()).await.failed(), 0);
    gw.clear_log();
    run(&gw, &everything()).await;
    assert_eq!(gw.writes(), Vec::<Op>::new());
}
