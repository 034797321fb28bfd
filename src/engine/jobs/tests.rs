use super::*;
use crate::core::document::test_doc;
use crate::core::secrets::{Credentials, Secret};
use crate::engine::apply::{Keys, Options};
use crate::engine::import;
use crate::gateway::fake::FakeGateway;

fn job() -> Job {
    Job::new(
        new_id(),
        JobTarget::Environment("prod".into()),
        JobKind::Import,
        "2026-12-02T10:00:00Z",
    )
}

fn entity(name: &str, result: Verb, message: Option<&str>) -> JobEntity {
    JobEntity {
        kind: Kind::Tool,
        name: name.into(),
        result,
        renamed_to: None,
        fields: Vec::new(),
        message: message.map(str::to_string),
    }
}

#[test]
fn ids_are_uuid4_and_checked() {
    let id = new_id();
    assert!(valid_id(&id), "{id}");
    assert_eq!(&id[14..15], "4");
    assert_ne!(id, new_id());
    for bad in ["", "../etc/passwd", &id.to_uppercase(), &format!("{id}x")] {
        assert!(!valid_id(bad), "{bad}");
    }
}

#[test]
fn results_are_counted_in_contextforge_words() {
    let mut j = job();
    j.start(4, "t1");
    j.record(entity("a", Verb::Create, None));
    j.record(entity("b", Verb::Update, None));
    j.record(entity("c", Verb::Unchanged, None));
    j.record(entity("d", Verb::Fail, Some("422 bad url")));
    let c = j.counts;
    assert_eq!(
        (
            c.total,
            c.processed,
            c.created,
            c.updated,
            c.skipped,
            c.failed
        ),
        (4, 4, 1, 1, 1, 1)
    );
    assert_eq!(j.errors, ["tool d: 422 bad url"]);
    let cf = j.contextforge_status();
    assert_eq!(cf["status"], "running");
    assert_eq!(cf["progress"]["failed"], 1);
    assert_eq!(cf["import_id"], j.id.as_str());
    assert!(cf["completed_at"].is_null());
}

#[test]
fn unfinished_jobs_are_interrupted_and_old_ones_expire() {
    let mut j = job();
    j.start(10, "t1");
    assert!(j.interrupt_if_unfinished("t2", 100));
    assert_eq!(j.state, JobState::Interrupted);
    assert!(!j.interrupt_if_unfinished("t3", 200), "only once");
    assert!(!j.expired(150, 60));
    assert!(j.expired(160, 60));
    let mut running = job();
    running.start(1, "t");
    assert!(!running.expired(u64::MAX, 0), "a running job never expires");
}

#[test]
fn the_store_persists_interrupts_and_cleans_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let jobs = dir.path().join("jobs");
    let (store, notes) = JobStore::open(&jobs).expect("open");
    assert!(notes.is_empty());
    let (mut a, mut b) = (job(), job());
    a.start(2, "t");
    b.finish(JobState::Completed, "t", 1);
    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    store.insert(a).expect("insert");
    store.insert(b).expect("insert");
    let mut rx = store.subscribe(&a_id).expect("subscribed");
    store
        .update(&a_id, |j| j.record(entity("x", Verb::Create, None)))
        .expect("update");
    assert!(
        rx.has_changed().expect("open"),
        "watchers see a change at once"
    );
    assert_eq!(rx.borrow_and_update().counts.created, 1);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(jobs.join(format!("{a_id}.json")))
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "job files are private: {mode:o}");
    std::fs::write(jobs.join("not-a-job.json"), "{").expect("write");
    std::fs::write(jobs.join(format!("{}.json", new_id())), "{").expect("write");
    drop(store);

    // A restart: the running job reads interrupted, on disk too; a broken file is said.
    let (store, notes) = JobStore::open(&jobs).expect("reopen");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("marked interrupted")));
    assert_eq!(
        store.get(&a_id).expect("a").state,
        JobState::Interrupted,
        "running at the stop"
    );
    let on_disk: Job =
        serde_json::from_slice(&std::fs::read(jobs.join(format!("{a_id}.json"))).expect("file"))
            .expect("job");
    assert_eq!(on_disk.state, JobState::Interrupted);
    assert_eq!(store.get(&b_id).expect("b").state, JobState::Completed);
    assert_eq!(store.list().len(), 2);

    let now = crate::core::clock::now_unix();
    let removed = store.cleanup(now, 3600).expect("cleanup");
    assert_eq!(
        removed,
        std::slice::from_ref(&b_id),
        "b finished at unix 1; a just now"
    );
    assert!(!jobs.join(format!("{b_id}.json")).exists());
    assert!(store.get(&b_id).is_none());
    assert!(store.update(&b_id, |_| {}).is_err());
}

#[tokio::test]
async fn an_import_job_records_live_progress_and_no_secret() {
    const CANARY: &str = "canary-7f3a9e-never-in-a-job";
    let secret = Secret::new("job-test-key");
    let creds = Credentials::from_pairs([("Authorization".into(), format!("Bearer {CANARY}"))]);
    let mut whole = test_doc(
        r#"{"tools": [{"name": "a", "url": "http://x.example/a", "integration_type": "REST", "request_type": "GET", "auth_type": "bearer"},
                     {"name": "b", "url": "http://x.example/b", "integration_type": "REST", "request_type": "GET"}]}"#,
    );
    whole.entities.tools[0].auth_value = Some(secret.encrypt(&creds));
    let gw = FakeGateway::new();
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _) = JobStore::open(dir.path()).expect("open");
    let mut j = job();
    let id = j.id.clone();
    let staged = import::stage(
        &gw,
        import::Request {
            whole: &whole,
            file: "request body",
            keys: Keys::new(Some(secret.clone()), None),
            include: None,
            opts: Options::default(),
        },
    )
    .await
    .expect("stage");
    j.start(import::total(&staged), "t");
    store.insert(j).expect("insert");
    let rx = store.subscribe(&id).expect("rx");
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |r: &EntityResult, done: usize, total: usize| {
        store
            .update(&id, |j| j.record(JobEntity::of(r)))
            .expect("update");
        seen.lock()
            .expect("seen")
            .push((done, total, rx.borrow().counts.processed));
    };
    let report = import::run(&gw, &staged, Some(&progress))
        .await
        .expect("run");
    store
        .update(&id, |j| j.complete(&report, "t2", 2))
        .expect("complete");
    assert_eq!(
        *seen.lock().expect("seen"),
        [(1, 2, 1), (2, 2, 2)],
        "one event per entity, each visible to a watcher"
    );
    let done = store.get(&id).expect("job");
    assert_eq!(done.state, JobState::Completed);
    assert_eq!((done.counts.created, done.counts.total), (2, 2));
    // The credential reached the gateway, but no job record holds it.
    let stored = serde_json::to_string(&gw.get(Kind::Tool, "a")).expect("json");
    assert!(
        stored.contains(CANARY) || stored.contains("auth"),
        "the fake holds the tool"
    );
    let file = std::fs::read_to_string(dir.path().join(format!("{id}.json"))).expect("file");
    let api = serde_json::to_string(&done).expect("json");
    for text in [&file, &api, &done.contextforge_status().to_string()] {
        assert!(!text.contains(CANARY), "{text}");
        assert!(!text.contains(whole.entities.tools[0].auth_value.as_deref().unwrap_or("-")));
    }
}

fn spec(names: &[&str]) -> ImportSpec {
    let tools: Vec<String> = names
        .iter()
        .map(|n| {
            format!(
                r#"{{"name": "{n}", "url": "http://x.example/{n}", "integration_type": "REST", "request_type": "GET"}}"#
            )
        })
        .collect();
    ImportSpec {
        whole: test_doc(&format!(r#"{{"tools": [{}]}}"#, tools.join(","))),
        file: "request body".into(),
        keys: Keys::default(),
        include: None,
        opts: Options::default(),
    }
}

#[tokio::test]
async fn two_imports_into_one_target_run_one_after_the_other() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _) = JobStore::open(dir.path()).expect("open");
    let store = std::sync::Arc::new(store);
    let gw = std::sync::Arc::new(FakeGateway::new());
    let target = JobTarget::Environment("prod".into());
    let (first, second) = (spec(&["a", "b"]), spec(&["c"]));
    let a = queue(&store, target.clone(), &first).expect("queue");
    let b = queue(&store, target.clone(), &second).expect("queue");
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    let (s1, g1, a1) = (store.clone(), gw.clone(), a.clone());
    let t1 = tokio::spawn(async move {
        run_import(&s1, &a1, &*g1, first, async {
            held.await.map_err(|e| e.to_string())
        })
        .await
    });
    // Let the first take the slot before the second asks for it.
    while store.writer(&target).try_lock().is_ok() {
        tokio::task::yield_now().await;
    }
    let (s2, g2, b1) = (store.clone(), gw.clone(), b.clone());
    let t2 = tokio::spawn(async move {
        run_import(&s2, &b1, &*g2, second, async { Ok::<_, String>(()) }).await
    });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        store.get(&b).expect("b").state,
        JobState::Queued,
        "b waits for a"
    );
    assert!(
        gw.writes().is_empty(),
        "a holds its lock: nothing written yet"
    );
    release.send(()).expect("release");
    t1.await.expect("a");
    t2.await.expect("b");
    let (ja, jb) = (store.get(&a).expect("a"), store.get(&b).expect("b"));
    assert_eq!(
        (ja.state, jb.state),
        (JobState::Completed, JobState::Completed)
    );
    assert!(ja.finished_at <= jb.started_at, "{ja:?} {jb:?}");
    assert_eq!(gw.keys(Kind::Tool).len(), 3);
}

#[tokio::test]
async fn a_job_that_cannot_start_fails_with_the_reason_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (store, _) = JobStore::open(dir.path()).expect("open");
    let gw = FakeGateway::new();
    let target = JobTarget::Gateway("g".into());
    let mut bad = spec(&["a"]);
    bad.whole.entities.tools[0].url = "not a url".into();
    let id = queue(&store, target.clone(), &bad).expect("queue");
    run_import(&store, &id, &gw, bad, async { Ok::<_, String>(()) }).await;
    let j = store.get(&id).expect("job");
    assert_eq!(j.state, JobState::Failed);
    assert!(j.errors[0].contains("url"), "{:?}", j.errors);
    let id = queue(&store, target, &spec(&["b"])).expect("queue");
    run_import(&store, &id, &gw, spec(&["b"]), async {
        Err::<(), _>("environment prod is reconciling".to_string())
    })
    .await;
    assert_eq!(
        store.get(&id).expect("job").errors,
        ["environment prod is reconciling"]
    );
    assert!(gw.writes().is_empty());
}
