//! The fake Kubernetes API server (`common::kube_api`) driven by the real kube client: what the
//! controller's end-to-end tests rely on it for. Fast, no gateway.

mod lease;
mod watch;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::kube_api::{FakeApi, NS};

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "test.mcp-gitops.dev",
    version = "v1alpha1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd"
)]
pub struct WidgetSpec {
    size: i64,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema, PartialEq)]
pub struct WidgetStatus {
    ready: bool,
    #[serde(default, rename = "observedGeneration")]
    observed_generation: i64,
}

fn with_widgets() -> FakeApi {
    let api = FakeApi::start();
    api.register_crds(&serde_saphyr::to_string(&Widget::crd()).unwrap());
    api
}

fn cm(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels}, "data": data,
    }))
    .unwrap()
}

fn code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other}"),
    }
}

/// Wait (with a deadline) for the next watcher event that `f` accepts.
async fn next_matching<S, K>(stream: &mut S, what: &str, f: impl Fn(&watcher::Event<K>) -> bool)
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await {
                Some(Ok(e)) if f(&e) => return,
                Some(_) => {}
                None => panic!("the watch stream ended"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no watch event: {what}"));
}

#[tokio::test]
async fn configmaps_create_get_list_patch_replace_delete() {
    let fake = FakeApi::start();
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), NS);
    let pp = PostParams::default();
    let a = cms
        .create(
            &pp,
            &cm("a", json!({"app": "x", "tier": "web"}), json!({"k": "1"})),
        )
        .await
        .unwrap();
    cms.create(&pp, &cm("b", json!({"app": "y"}), json!({})))
        .await
        .unwrap();
    assert!(!a.uid().unwrap().is_empty());
    assert!(a.creation_timestamp().is_some());
    let rv_a: u64 = a.resource_version().unwrap().parse().unwrap();
    assert_eq!(
        code(
            cms.create(&pp, &cm("a", json!({}), json!({})))
                .await
                .unwrap_err()
        ),
        409
    );
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["k"], "1");

    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items.iter().map(|c| c.name_any()).collect()
    };
    assert_eq!(
        names(cms.list(&ListParams::default()).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app=x"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("tier"))
                .await
                .unwrap()
        ),
        ["a"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("!tier"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().labels("app in (y,z)"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let list = cms.list(&ListParams::default()).await.unwrap();
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(list_rv > rv_a, "the list's resourceVersion is the newest");

    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "2"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["k"], "2");
    assert!(patched.resource_version().unwrap().parse::<u64>().unwrap() > list_rv);

    // A replace carrying an old resourceVersion is a conflict; the current one succeeds.
    let mut stale = a.clone();
    stale.data = Some([("k".to_string(), "stale".to_string())].into());
    assert_eq!(code(cms.replace("a", &pp, &stale).await.unwrap_err()), 409);
    let mut fresh = patched.clone();
    fresh.data = Some([("k".to_string(), "3".to_string())].into());
    assert_eq!(
        cms.replace("a", &pp, &fresh).await.unwrap().data.unwrap()["k"],
        "3"
    );

    // A JSON patch (kube sends it only with its `jsonpatch` feature: plain HTTP here).
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/namespaces/{NS}/configmaps/a", fake.url);
    let r = http
        .patch(&url)
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op":"add","path":"/data/j","value":"v"},{"op":"test","path":"/data/k","value":"3"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["j"], "v");
    let r = http
        .patch(&url)
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op":"test","path":"/data/k","value":"nope"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "a failed JSON patch test is refused");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(cms.get("a").await.unwrap_err()), 404);
    let log = fake.requests();
    let deletes: Vec<_> = log.iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].path,
        format!("/api/v1/namespaces/{NS}/configmaps/a")
    );
    assert!(
        log.iter().any(|r| r.method == "PATCH"
            && r.content_type.as_deref() == Some("application/merge-patch+json")),
        "the request log records content types"
    );
}

#[tokio::test]
async fn secrets_take_string_data_as_base64() {
    let fake = FakeApi::start();
    let secrets: Api<Secret> = Api::namespaced(fake.client(), NS);
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "tok"}, "stringData": {"token": "hello"},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let got = secrets.get("tok").await.unwrap();
    assert_eq!(got.data.unwrap()["token"].0, b"hello");
    assert!(got.string_data.is_none());
    assert_eq!(got.type_.as_deref(), Some("Opaque"));
}

#[tokio::test]
async fn custom_resources_status_subresource_and_generation() {
    let fake = with_widgets();
    let client = fake.client();
    let widgets: Api<Widget> = Api::namespaced(client.clone(), NS);
    let mut w = Widget::new("w1", WidgetSpec { size: 1 });
    w.status = Some(WidgetStatus {
        ready: true,
        observed_generation: 9,
    });
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.status.is_none(),
        "a create ignores status when /status exists"
    );

    // A status apply changes neither spec nor generation.
    let status = json!({
        "apiVersion": "test.mcp-gitops.dev/v1alpha1", "kind": "Widget",
        "metadata": {"name": "w1"}, "status": {"ready": true, "observedGeneration": 1},
    });
    let pp = PatchParams::apply("widget-controller").force();
    let after = widgets
        .patch_status("w1", &pp, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(1));
    assert_eq!(after.spec.size, 1);
    assert!(after.status.as_ref().unwrap().ready);
    let rv = after.resource_version().unwrap();
    // The same status again is a no-op: the resourceVersion stays.
    let again = widgets
        .patch_status("w1", &pp, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(again.resource_version().unwrap(), rv);

    // A spec write bumps generation and keeps the status; a status in it is ignored.
    let spec = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"ready": false}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    assert!(spec.status.as_ref().unwrap().ready);
    // A label change is not a spec change.
    let labelled = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));

    let log = fake.requests();
    let status_writes: Vec<_> = log.iter().filter(|r| r.is_status_write()).collect();
    assert_eq!(status_writes.len(), 2);
    assert!(status_writes.iter().all(|r| {
        r.content_type.as_deref() == Some("application/apply-patch+yaml")
            && r.query.contains("fieldManager=widget-controller")
            && r.path
                == format!("/apis/test.mcp-gitops.dev/v1alpha1/namespaces/{NS}/widgets/w1/status")
    }));

    // Discovery knows the custom kind, its status subresource and short name.
    let discovery = kube::Discovery::new(client).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "test.mcp-gitops.dev",
            "v1alpha1",
            "Widget",
        ))
        .expect("Widget discovered");
    assert_eq!(ar.plural, "widgets");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
    assert!(discovery.has_group("coordination.k8s.io"));
}

#[tokio::test]
async fn server_side_apply_owns_fields_and_reports_conflicts() {
    let fake = with_widgets();
    let widgets: Api<Widget> = Api::namespaced(fake.client(), NS);
    let doc = |labels: Value, size: i64| {
        json!({
            "apiVersion": "test.mcp-gitops.dev/v1alpha1", "kind": "Widget",
            "metadata": {"name": "w", "labels": labels}, "spec": {"size": size},
        })
    };
    let a = PatchParams::apply("a");
    let created = widgets
        .patch(
            "w",
            &a,
            &Patch::Apply(doc(json!({"one": "1", "two": "2"}), 1)),
        )
        .await
        .expect("apply creates");
    assert_eq!(created.metadata.generation, Some(1));
    let mf = created.metadata.managed_fields.unwrap();
    assert_eq!(mf[0].manager.as_deref(), Some("a"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    // Another manager setting a field a owns to another value conflicts; forced, it takes it.
    let b = PatchParams::apply("b");
    let e = widgets
        .patch("w", &b, &Patch::Apply(doc(json!({}), 5)))
        .await
        .unwrap_err();
    assert_eq!(code(e), 409);
    assert_eq!(
        widgets.get("w").await.unwrap().spec.size,
        1,
        "a conflict changes nothing"
    );
    // The same value is shared ownership, no conflict.
    widgets
        .patch("w", &b, &Patch::Apply(doc(json!({"one": "1"}), 1)))
        .await
        .unwrap();
    let forced = widgets
        .patch(
            "w",
            &b.clone().force(),
            &Patch::Apply(doc(json!({"one": "1"}), 5)),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.size, 5);
    assert_eq!(forced.metadata.generation, Some(2));

    // a applies again without `two`: a field only a owned goes; `one` (shared with b) stays.
    let after = widgets
        .patch(
            "w",
            &a.clone().force(),
            &Patch::Apply(doc(json!({"one": "1"}), 5)),
        )
        .await
        .unwrap();
    let labels = after.labels();
    assert_eq!(labels.get("one").map(String::as_str), Some("1"));
    assert!(!labels.contains_key("two"), "{labels:?}");
    // apply without a field manager is refused
    let r = reqwest::Client::new()
        .patch(format!(
            "{}/apis/test.mcp-gitops.dev/v1alpha1/namespaces/{NS}/widgets/w",
            fake.url
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body("apiVersion: test.mcp-gitops.dev/v1alpha1\nkind: Widget\nmetadata: {name: w}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn finalizers_hold_a_deletion_until_released() {
    let fake = with_widgets();
    let widgets: Api<Widget> = Api::namespaced(fake.client(), NS);
    let mut w = Widget::new("f", WidgetSpec { size: 1 });
    w.metadata.finalizers = Some(vec!["test.mcp-gitops.dev/cleanup".into()]);
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let mut stream = watcher(widgets.clone(), watcher::Config::default())
        .default_backoff()
        .boxed();
    next_matching(&mut stream, "init done", |e| {
        matches!(e, watcher::Event::InitDone)
    })
    .await;

    let left = widgets.delete("f", &DeleteParams::default()).await.unwrap();
    let marked = left.left().expect("still there while a finalizer is set");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(
        marked.metadata.generation,
        Some(2),
        "marking for deletion is a new generation"
    );
    next_matching(
        &mut stream,
        "the deletion mark",
        |e| matches!(e, watcher::Event::Apply(w) if w.metadata.deletion_timestamp.is_some()),
    )
    .await;
    // A second delete changes nothing.
    let again = widgets.delete("f", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        again.left().unwrap().resource_version(),
        marked.resource_version()
    );
    assert!(widgets.get("f").await.is_ok());

    // Dropping the finalizer (a JSON merge patch as kube's finalizer helper's effect) deletes.
    widgets
        .patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    next_matching(
        &mut stream,
        "the deletion",
        |e| matches!(e, watcher::Event::Delete(w) if w.name_any() == "f"),
    )
    .await;
    assert_eq!(code(widgets.get("f").await.unwrap_err()), 404);
}

#[tokio::test]
async fn owned_objects_are_collected_with_their_owner() {
    let fake = with_widgets();
    let client = fake.client();
    let widgets: Api<Widget> = Api::namespaced(client.clone(), NS);
    let cms: Api<ConfigMap> = Api::namespaced(client, NS);
    let w = widgets
        .create(
            &PostParams::default(),
            &Widget::new("owner", WidgetSpec { size: 1 }),
        )
        .await
        .unwrap();
    let mut child = cm("inventory", json!({}), json!({}));
    child.metadata.owner_references = Some(vec![w.controller_owner_ref(&()).unwrap()]);
    cms.create(&PostParams::default(), &child).await.unwrap();
    widgets
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(code(cms.get("inventory").await.unwrap_err()), 404);
}
