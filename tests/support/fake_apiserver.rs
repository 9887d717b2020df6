//! A stateful fake Kubernetes API server for tests, served over HTTP on `127.0.0.1:0` like the real one.
//!
//! Serves `apps/v1` deployments and replicasets, `argoproj.io/v1alpha1` rollouts (each with `/status`) and
//! `coordination.k8s.io/v1` leases: GET, LIST (label and `metadata.name`/`metadata.namespace` field selectors), WATCH
//! (resume from a resourceVersion, bookmarks, `timeoutSeconds`, 410 when compacted), POST, PUT, PATCH (merge, JSON,
//! strategic-as-merge) and DELETE, with the registry rules that matter to a controller: one global resourceVersion,
//! 409 on a stale write, `status` only through the status subresource, `metadata.generation` bumped on `spec` (and
//! on annotations for Deployments). Not served: server-side apply (415), pagination (`limit` is ignored and every
//! item is returned), finalizers and graceful deletion, admission and schema validation, core `v1` resources.
//!
//! Every request is recorded in order, so tests assert the exact calls; faults (status codes, delays) are injected
//! per request matcher. [`FakeApiServer::seed_deployment`] and the controller helpers in `controller.rs` stand in for
//! kube-controller-manager.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

pub mod client;
mod controller;
mod faults;
pub mod objects;
mod patch;
mod resources;
mod routes;
mod selectors;
mod status;
mod store;
mod watch;

pub use faults::{Matcher, RecordedRequest};

use resources::Resource;
use routes::Shared;

/// A running fake API server; it stops (and drops its watches) when dropped.
pub struct FakeApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeApiServer {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            store: store::Store::new(),
            signals: watch::WatchSignals::new(),
            faults: Arc::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake apiserver");
        let addr = listener.local_addr().expect("fake apiserver address");
        let app = routes::router(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake apiserver serve");
        });
        Self { addr, shared, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the cluster URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes `dir/kubeconfig` pointing at this server (no TLS, no auth, namespace `default`) and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    /// Stores an object as given (status and generation included), as the state of the cluster before the test.
    /// Fills `uid`, `creationTimestamp`, `generation` when missing; sets a new resourceVersion; watches see it.
    /// Returns the stored object.
    pub fn put_object(&self, object: Value) -> Value {
        self.shared.store.seed(object).unwrap_or_else(|e| panic!("put_object: {e}"))
    }

    /// `get_object("apps/v1", "deployments", "shop", "web")`.
    pub fn get_object(&self, group_version: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.shared.store.get(resource(group_version, plural), ns, name)
    }

    /// Every object of a resource in `ns`, by name.
    pub fn list_objects(&self, group_version: &str, plural: &str, ns: &str) -> Vec<Value> {
        self.shared.store.list(resource(group_version, plural), Some(ns), |_| true).1
    }

    /// The newest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.resource_version()
    }

    /// Every request so far, in arrival order (faulted ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.faults.requests()
    }

    /// The requests that could change state: everything but GET (so list and watch traffic is left out).
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|r| r.method != "GET").collect()
    }

    pub fn clear_requests(&self) {
        self.shared.faults.clear_requests();
    }

    /// The next `n` requests that match answer `code` with a `Status` (reason from the code) and change nothing.
    pub fn fail_next(&self, n: usize, matcher: Matcher, code: u16) {
        self.shared.faults.fail_next(n, matcher, code);
    }

    /// The next `n` requests that match wait `delay` before being served.
    pub fn delay_next(&self, n: usize, matcher: Matcher, delay: Duration) {
        self.shared.faults.delay_next(n, matcher, delay);
    }

    /// Fault shots armed and not yet used.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.pending()
    }

    /// Ends every open watch stream cleanly, as an apiserver restart or a load balancer would; clients re-watch.
    pub fn break_watches(&self) {
        self.shared.signals.breaks.send_modify(|n| *n += 1);
    }

    /// Sends a BOOKMARK now on every open watch that asked for them (`allowWatchBookmarks=true`).
    pub fn send_bookmarks(&self) {
        self.shared.signals.bookmarks.send_modify(|n| *n += 1);
    }

    /// Watch streams currently open, to wait for a client to be watching before changing state.
    pub fn open_watches(&self) -> usize {
        self.shared.signals.open.load(Ordering::SeqCst)
    }

    /// Forgets the event history: a watch resuming from any earlier resourceVersion gets 410 Gone and must relist.
    pub fn compact(&self) {
        self.shared.store.compact();
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.break_watches();
        self.task.abort();
    }
}

fn resource(group_version: &str, plural: &str) -> &'static Resource {
    Resource::by_group_version(group_version, plural)
        .unwrap_or_else(|| panic!("the fake apiserver does not serve {group_version} {plural}"))
}
