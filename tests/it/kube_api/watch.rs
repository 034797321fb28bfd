//! Watches: kube's watcher through changes, a selection, a server restart; 410 Gone.

use super::*;

#[tokio::test]
async fn a_watcher_sees_changes_and_reconnects_after_a_restart() {
    let mut fake = FakeApi::start();
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), NS);
    let pp = PostParams::default();
    cms.create(&pp, &cm("before", json!({"app": "x"}), json!({})))
        .await
        .unwrap();
    let mut stream = watcher(cms.clone(), watcher::Config::default().labels("app=x"))
        .default_backoff()
        .boxed();
    next_matching(
        &mut stream,
        "the initial object",
        |e| matches!(e, watcher::Event::InitApply(c) if c.name_any() == "before"),
    )
    .await;
    next_matching(&mut stream, "init done", |e| {
        matches!(e, watcher::Event::InitDone)
    })
    .await;

    cms.create(&pp, &cm("c", json!({"app": "x"}), json!({"v": "1"})))
        .await
        .unwrap();
    cms.create(&pp, &cm("other", json!({"app": "y"}), json!({})))
        .await
        .unwrap();
    next_matching(
        &mut stream,
        "c added",
        |e| matches!(e, watcher::Event::Apply(c) if c.name_any() == "c"),
    )
    .await;
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    next_matching(
        &mut stream,
        "c modified",
        |e| matches!(e, watcher::Event::Apply(c) if c.data.as_ref().unwrap()["v"] == "2"),
    )
    .await;
    // Leaving the selection is a deletion for a selector watch.
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}})),
    )
    .await
    .unwrap();
    next_matching(
        &mut stream,
        "c left the selection",
        |e| matches!(e, watcher::Event::Delete(c) if c.name_any() == "c"),
    )
    .await;

    // Stop the server (every watch connection drops), change things while it is down, and start
    // it again on the same port: the watcher reconnects and sees the change.
    fake.stop();
    fake.restart();
    let cms2: Api<ConfigMap> = Api::namespaced(fake.client(), NS);
    cms2.create(&pp, &cm("after", json!({"app": "x"}), json!({})))
        .await
        .unwrap();
    next_matching(&mut stream, "a change after the restart", |e| {
        matches!(e, watcher::Event::Apply(c) | watcher::Event::InitApply(c) if c.name_any() == "after")
    })
    .await;
    let watches = fake.requests().iter().filter(|r| r.is_watch()).count();
    assert!(
        watches >= 2,
        "the watcher watched again after the restart ({watches})"
    );
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_is_gone() {
    let fake = FakeApi::start();
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), NS);
    let c = cms
        .create(&PostParams::default(), &cm("a", json!({}), json!({})))
        .await
        .unwrap();
    let old = c.resource_version().unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    fake.compact();
    let mut s = cms
        .watch(&kube::api::WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    match s.try_next().await {
        Ok(Some(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 410),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
}
