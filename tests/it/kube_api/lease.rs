//! Leases with kube-lease-manager: one holder, hand-over on release and on expiry.

use super::*;

#[tokio::test]
async fn a_lease_has_one_holder_and_passes_on_when_released() {
    let fake = FakeApi::start();
    let manager = |id: &str| {
        kube_lease_manager::LeaseManagerBuilder::new(fake.client(), "leader")
            .with_namespace(NS)
            .with_identity(id)
            .with_duration(3)
            .with_grace(1)
            .build()
    };
    let one = manager("one").await.unwrap();
    let two = manager("two").await.unwrap();
    let (mut one_rx, one_task) = one.watch().await;
    tokio::time::timeout(Duration::from_secs(20), one_rx.wait_for(|l| *l))
        .await
        .expect("one leads")
        .unwrap();
    let (mut two_rx, _two_task) = two.watch().await;
    let holder = || {
        fake.object("coordination.k8s.io", "leases", "leader")
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    };
    assert_eq!(holder().as_deref(), Some("one"));
    // While one renews, two stays a standby (one renews every ~2 s; watch two over 4 s).
    let standby = tokio::time::timeout(Duration::from_secs(4), two_rx.wait_for(|l| *l))
        .await
        .is_err();
    assert!(standby, "two took a lease one holds");
    assert_eq!(holder().as_deref(), Some("one"));

    // one steps down (its receiver dropped: it releases): two takes over.
    drop(one_rx);
    let _ = one_task.await;
    tokio::time::timeout(Duration::from_secs(20), two_rx.wait_for(|l| *l))
        .await
        .expect("two takes over")
        .unwrap();
    assert_eq!(holder().as_deref(), Some("two"));
    let lease: Lease = Api::namespaced(fake.client(), NS)
        .get("leader")
        .await
        .unwrap();
    assert!(lease.spec.unwrap().lease_transitions.unwrap_or(0) >= 2);
}

#[tokio::test]
async fn a_dead_leaders_lease_expires_to_the_standby() {
    let fake = FakeApi::start();
    let manager = |id: &str| {
        kube_lease_manager::LeaseManagerBuilder::new(fake.client(), "leader")
            .with_namespace(NS)
            .with_identity(id)
            .with_duration(3)
            .with_grace(1)
            .build()
    };
    let one = manager("one").await.unwrap();
    let (mut one_rx, one_task) = one.watch().await;
    tokio::time::timeout(Duration::from_secs(20), one_rx.wait_for(|l| *l))
        .await
        .expect("one leads")
        .unwrap();
    // one dies without releasing (its task aborted: no more renewals, no release).
    one_task.abort();
    let two = manager("two").await.unwrap();
    let (mut two_rx, _t) = two.watch().await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(20), two_rx.wait_for(|l| *l))
        .await
        .expect("two takes over an expired lease")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let holder = fake
        .object("coordination.k8s.io", "leases", "leader")
        .unwrap();
    assert_eq!(holder["spec"]["holderIdentity"], "two");
}
