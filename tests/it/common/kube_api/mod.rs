//! A small fake Kubernetes API server for tests, on 127.0.0.1 over plain HTTP, in its own thread
//! and runtime (so it keeps serving while a test blocks, and can be stopped and restarted on the
//! same port with its objects kept, to test watch reconnects).
//!
//! It serves discovery (`/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`),
//! namespaced Secrets, ConfigMaps, Events (core/v1 and events.k8s.io/v1) and Leases, the
//! cluster-scoped Namespaces and CustomResourceDefinitions, and the custom resources those CRDs
//! declare (all namespaces exist without being created). Verbs: GET, LIST (label selectors
//! `k=v`, `k!=v`, `k`, `!k`, `in`, `notin`; field selectors on `metadata.name` and
//! `metadata.namespace`; no paging: `limit` is ignored and everything comes in one page), WATCH
//! (`?watch=true` from a resourceVersion, or the current objects as ADDED; BOOKMARKs;
//! `sendInitialEvents`; 410 Gone after `compact()`), CREATE, REPLACE (resourceVersion conflict →
//! 409), DELETE (finalizers: `deletionTimestamp`, removed when the list empties; preconditions;
//! owner-reference garbage collection in the background style), delete-collection, JSON merge
//! patch, JSON patch, strategic merge patch (as a merge patch) and server-side apply (see
//! `apply.rs` for what is simplified), and the `/status` subresource (status writes keep the
//! spec and generation; spec writes keep the status and bump `metadata.generation`). No-op
//! writes change nothing, not even the resourceVersion.
//!
//! Not served: authentication and authorisation (every request is allowed), admission,
//! OpenAPI schema validation and pruning of custom resources, defaulting, conversion between
//! versions (one stored object shows under every served version), `dryRun` (refused with 400),
//! protobuf and CBOR, subresources other than `status`, paging.

pub mod apply;
pub mod resources;
pub mod select;
pub mod server;
pub mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::oneshot;

pub use server::Request;
use server::Shared;
use store::Store;

/// The namespace tests use.
pub const NS: &str = "default";

struct Running {
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// A running fake API server; stopped on drop.
pub struct FakeApi {
    pub url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<Running>,
    /// More ports onto the same objects (`door`).
    doors: Vec<Running>,
}

fn serve(shared: Arc<Shared>, listener: std::net::TcpListener) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fake-kube-api")
            .enable_all()
            .build()
            .expect("a runtime for the fake API server");
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let port = listener.local_addr().unwrap().port();
            let app = axum::Router::new()
                .fallback(server::handle)
                .with_state((shared, port));
            tokio::select! {
                r = axum::serve(listener, app) => r.expect("the fake API server failed"),
                _ = stopped => {}
            }
        });
        // Dropping the runtime drops every connection and watch with it.
        rt.shutdown_timeout(Duration::from_secs(2));
    });
    Running { stop, thread }
}

impl FakeApi {
    /// Start on a free loopback port.
    pub fn start() -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            log: Mutex::new(Vec::new()),
        });
        let running = Some(serve(shared.clone(), listener));
        FakeApi {
            url: format!("http://{addr}"),
            addr,
            shared,
            running,
            doors: Vec::new(),
        }
    }

    /// Another port onto the same objects (so a test can tell two clients' requests apart by
    /// `Request::port`); its URL. Not restarted by `restart`.
    pub fn door(&mut self) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}", listener.local_addr().unwrap());
        self.doors.push(serve(self.shared.clone(), listener));
        url
    }

    /// The port of the main URL.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Stop serving: every connection and watch is closed; the objects are kept.
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop.send(());
            r.thread
                .join()
                .expect("the fake API server's thread panicked");
        }
    }

    /// Serve again on the same port, with the same objects and history.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot bind {} again: {e}", self.addr),
            }
        };
        self.running = Some(serve(self.shared.clone(), listener));
    }

    /// Register custom resources from CRD YAML (one or more documents), as if created through
    /// the API (they are also listed as CustomResourceDefinitions).
    pub fn register_crds(&self, yaml: &str) {
        let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("CRD YAML");
        let mut store = self.shared.store.lock().unwrap();
        let res = store
            .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .unwrap();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            store
                .create(&res, "", doc, store::Owner::Update("fake-api-test".into()))
                .unwrap_or_else(|e| panic!("CRD not registered: {}", e.message));
        }
    }

    /// A kube client for this server (default namespace `NS`); needs a Tokio runtime.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.default_namespace = NS.into();
        kube::Client::try_from(config).expect("a kube client")
    }

    /// Write a kubeconfig pointing at this server (context `fake`, namespace `NS`) into `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        Self::kubeconfig_for(&self.url, &dir.join("kubeconfig"))
    }

    /// Write a kubeconfig for `url` (one of this server's doors) at `path`.
    pub fn kubeconfig_for(url: &str, path: &Path) -> PathBuf {
        let path = path.to_path_buf();
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NS}\n\
             current-context: fake\n"
        );
        std::fs::write(&path, text).expect("write kubeconfig");
        path
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many requests so far (to look only at later ones: `requests()[mark..]`).
    pub fn mark(&self) -> usize {
        self.shared.log.lock().unwrap().len()
    }

    /// Requests after `mark`.
    pub fn requests_since(&self, mark: usize) -> Vec<Request> {
        self.shared.log.lock().unwrap()[mark..].to_vec()
    }

    /// The stored object, read directly (not a request); `group` "" for the core group.
    pub fn object(&self, group: &str, plural: &str, name: &str) -> Option<Value> {
        self.shared
            .store
            .lock()
            .unwrap()
            .raw(group, plural, NS, name)
    }

    /// Every stored object of a kind in `NS`, read directly.
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        self.shared.store.lock().unwrap().raw_all(group, plural, NS)
    }

    /// The global resourceVersion now.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().unwrap().rv()
    }

    /// Forget the change history: watches from older versions get 410 Gone.
    pub fn compact(&self) {
        self.shared.store.lock().unwrap().compact();
    }

    /// Poll (every 50 ms, up to `timeout`) until `f` gives Some; panic with `what` otherwise.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&FakeApi) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop();
        for d in self.doors.drain(..) {
            let _ = d.stop.send(());
            let _ = d.thread.join();
        }
    }
}
