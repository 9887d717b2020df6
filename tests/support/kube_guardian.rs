//! A whole guardian in `guard.mode: kubernetes`, run as the real binary
//! (`guardian run`) against the stateful fake API server and the NEXTGEN
//! simulator: the set-up of `tests/guard_kube.rs`, and readers of what the
//! guardians did to the cluster (the exact PATCHes) and what they recorded.

use std::path::{Path, PathBuf};
use std::time::Duration;

use guardian::sim::{Fault, Simulator};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::eventually::eventually;
use super::fake_apiserver::{FakeApiServer, RecordedRequest, objects};
use super::guardian::Guardian;
use super::promtext::sample;

pub const NS: &str = "blueocean-nextgen-prod";
pub const NAME: &str = "nextgen-dashboard";
pub const TARGET: &str = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";
pub const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/blueocean-nextgen-prod/deployments/nextgen-dashboard";
pub const ROLLOUT: &str = "/apis/argoproj.io/v1alpha1/namespaces/blueocean-nextgen-prod/rollouts/nextgen-dashboard";
/// The Lease is named after the environment, in the kubeconfig context's namespace.
pub const LEASE_NS: &str = "default";
pub const LEASE: &str = "guardian-prod";
/// `guard.lease` in every config here: short, so a takeover fits in a test.
pub const LEASE_DURATION: Duration = Duration::from_secs(3);
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";
pub const ROLLED_BACK_TO: &str = "guardian.blueocean.io/rolled-back-to";
pub const ROLLED_BACK_FROM: &str = "guardian.blueocean.io/rolled-back-from";
/// The annotation a pause leaves on the object, saying why.
pub const REASON: &str = "guardian.blueocean.io/reason";
/// The bearer token of every guardian here (`api.token_env: GUARD_TOKEN`): POSTs other than the gate's need it.
pub const TOKEN: &str = "guard-kube-token";
/// `gate.stale_after` in every config here: an armed target whose check has had no answer this long is paused.
/// It must be at least a check's interval + timeout (1 s + 6 s for payments-health), which validation enforces.
pub const STALE_AFTER: Duration = Duration::from_secs(8);

const IMAGE: &str = "registry.digitalocean.com/blueocean/nextgen-dashboard";
const REPLICAS: i64 = 5;
/// Long enough for a cold start of the binary, the first probes and the first list of the watch.
const SETTLE: Duration = Duration::from_secs(15);

pub fn image(version: &str) -> String {
    format!("{IMAGE}:{version}")
}

/// The first container's image of a Deployment or Rollout.
pub fn image_of(object: &Value) -> String {
    object["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_owned()
}

/// The fake API server, the simulator the guardians probe, and one kubeconfig for all of them.
pub struct Cluster {
    pub fake: FakeApiServer,
    /// `None` once stopped with [`Cluster::stop_simulator`].
    sim: Option<Simulator>,
    sim_stop: CancellationToken,
    kubeconfig: PathBuf,
    _kube_dir: tempfile::TempDir,
}

/// One guardian replica to start: its identity (`HOSTNAME`, the Lease holder) and its config.
#[derive(Clone, Debug)]
pub struct Replica {
    identity: String,
    kind: &'static str,
    guard_extra: String,
    customers: bool,
    redis: Option<String>,
    /// A generic webhook the guardian notifies.
    webhook: Option<String>,
}

impl Replica {
    /// Guarding the nextgen-dashboard Deployment, acting for real.
    pub fn named(identity: &str) -> Self {
        Self {
            identity: identity.to_owned(),
            kind: "Deployment",
            guard_extra: String::new(),
            customers: false,
            redis: None,
            webhook: None,
        }
    }

    /// With `redis.url` set: in Kubernetes mode it only deduplicates notifications.
    pub fn with_redis(mut self, url: &str) -> Self {
        self.redis = Some(url.to_owned());
        self
    }

    /// Notifying a generic webhook at `url` (`notify.webhooks`).
    pub fn notifying(mut self, url: &str) -> Self {
        self.webhook = Some(url.to_owned());
        self
    }

    pub fn dry_run(mut self) -> Self {
        self.guard_extra.push_str("  dry_run: true\n");
        self
    }

    /// Guarding an Argo Rollout of the same name instead of the Deployment.
    pub fn of_an_argo_rollout(mut self) -> Self {
        self.kind = "Rollout";
        self
    }

    /// Also probing `/api/customers/count` as `customers-count` (`no_drop` on `/count`), guarding the target too.
    pub fn counting_customers(mut self) -> Self {
        self.customers = true;
        self
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }
}

impl Cluster {
    pub async fn start() -> Self {
        let fake = FakeApiServer::start().await;
        let sim_stop = CancellationToken::new();
        let localhost = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let sim = Simulator::start(localhost, [0, 0, 0], sim_stop.clone()).await.unwrap();
        let kube_dir = tempfile::tempdir().unwrap();
        let kubeconfig = fake.kubeconfig(kube_dir.path());
        Self { fake, sim: Some(sim), sim_stop, kubeconfig, _kube_dir: kube_dir }
    }

    /// The simulator the guardians probe; panics once it was stopped.
    pub fn sim(&self) -> &Simulator {
        self.sim.as_ref().expect("the simulator was stopped")
    }

    /// Stops the simulator and waits until its servers are gone: from now on every probe is refused.
    pub async fn stop_simulator(&mut self) {
        self.sim_stop.cancel();
        let sim = self.sim.take().expect("the simulator runs");
        tokio::time::timeout(Duration::from_secs(10), sim.stopped()).await.expect("the simulator stops");
    }

    /// Injects a fault into the simulator.
    pub fn fault(&self, fault: Fault) {
        self.sim().faults().set(fault);
    }

    /// nextgen-dashboard 1.8.1, settled at revision 1, with its ReplicaSet.
    pub fn seed_deployment(&self) -> Value {
        self.fake.seed_deployment(NS, NAME, &image("1.8.1"), REPLICAS)
    }

    /// `kubectl set image` to 1.8.2, and the controller's first pass: revision 2, mid-rollout.
    pub fn roll_out(&self) -> Value {
        self.fake.simulate_rollout(NS, NAME, &image("1.8.2"))
    }

    /// An Argo Rollout of 1.8.1, healthy: its current pod hash is the stable one.
    pub fn seed_argo_rollout(&self) -> Value {
        let mut r = objects::rollout(NS, NAME, &image("1.8.1"), REPLICAS);
        r["metadata"]["annotations"] = json!({"rollout.argoproj.io/revision": "1"});
        r["status"]["currentPodHash"] = json!("6d9c7f5b48");
        r["status"]["stableRS"] = json!("6d9c7f5b48");
        self.fake.put_object(r)
    }

    /// What the Argo controller shows once 1.8.2 goes out: a new current pod hash, the old one still stable.
    pub fn roll_out_argo(&self) -> Value {
        let mut r = self.fake.get_object("argoproj.io/v1alpha1", "rollouts", NS, NAME).unwrap();
        r["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image("1.8.2"));
        r["metadata"]["generation"] = json!(2);
        r["metadata"]["annotations"]["rollout.argoproj.io/revision"] = json!("2");
        r["status"]["observedGeneration"] = json!("2");
        r["status"]["phase"] = json!("Progressing");
        r["status"]["currentPodHash"] = json!("5f8b9d7c64");
        r["status"]["updatedReplicas"] = json!(1);
        self.fake.put_object(r)
    }

    /// Every payments health probe answers 503 from now on.
    pub fn break_payments(&self) {
        self.fault(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    }

    /// A guardian with its own working directory (and so its own SQLite storage).
    pub fn guardian(&self, replica: &Replica) -> Guardian {
        Guardian::start(&self.config(replica), &self.envs(replica))
    }

    /// A guardian working in `dir`: a restart on the same storage is a second call with the same `dir`.
    pub fn guardian_in(&self, dir: &Path, replica: &Replica) -> Guardian {
        Guardian::start_in(dir, &self.config(replica), &self.envs(replica))
    }

    fn envs<'a>(&'a self, replica: &'a Replica) -> [(&'a str, &'a str); 3] {
        [
            ("KUBECONFIG", self.kubeconfig.to_str().unwrap()),
            ("HOSTNAME", replica.identity.as_str()),
            ("GUARD_TOKEN", TOKEN),
        ]
    }

    /// guard_simulated.rs's guardian, in Kubernetes mode with a short lease.
    fn config(&self, r: &Replica) -> String {
        let d = self.sim().dashboard();
        let (customers_check, customers_guarded) = if r.customers {
            let check = format!(
                r#"  - name: customers-count
    url: "http://{d}/api/customers/count"
    interval: 1s
    budget: 1s
    expect:
      json:
        - {{ path: /count, no_drop: true }}
"#
            );
            (check, ", customers-count")
        } else {
            (String::new(), "")
        };
        format!(
            r#"environment: prod
listen: "127.0.0.1:0"
storage: {{ url: "sqlite://guardian.db" }}
api: {{ token_env: GUARD_TOKEN }}
probing: {{ per_host_per_second: 1000 }}
{redis}checks:
  - name: payments-health
    url: "http://{d}/api/payments/health"
    interval: 1s
    budget: 3s
    timeout: 6s
{customers_check}guard:
  mode: kubernetes
  lease: {{ duration: {lease}s, renew_every: {renew}s }}
  targets:
    - {{ kind: {kind}, namespace: {NS}, name: {NAME}, checks: [payments-health{customers_guarded}] }}
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
{extra}gate:
  stale_after: {stale}s
{notify}"#,
            lease = LEASE_DURATION.as_secs(),
            renew = RENEW_EVERY.as_secs(),
            kind = r.kind,
            extra = r.guard_extra,
            stale = STALE_AFTER.as_secs(),
            redis = r.redis.as_ref().map(|u| format!("redis: {{ url: '{u}' }}\n")).unwrap_or_default(),
            notify = r
                .webhook
                .as_ref()
                .map(|u| format!("notify:\n  webhooks:\n    - {{ url: '{u}', format: generic }}\n"))
                .unwrap_or_default(),
        )
    }

    pub fn deployment(&self) -> Value {
        self.fake.get_object("apps/v1", "deployments", NS, NAME).expect("the Deployment exists")
    }

    pub fn argo_rollout(&self) -> Value {
        self.fake.get_object("argoproj.io/v1alpha1", "rollouts", NS, NAME).expect("the Rollout exists")
    }

    /// Every request that could change the cluster, but the Lease's (leader election is not an action).
    pub fn writes_besides_the_lease(&self) -> Vec<RecordedRequest> {
        self.fake.writes().into_iter().filter(|w| !w.path.starts_with("/apis/coordination.k8s.io/")).collect()
    }

    /// The PATCHes sent to the guarded Deployment, in order, failed ones included.
    pub fn deployment_patches(&self) -> Vec<RecordedRequest> {
        self.fake.writes().into_iter().filter(|w| w.method == "PATCH" && w.path == DEPLOYMENT).collect()
    }

    /// Pauses are merge patches of the Deployment.
    pub fn pauses(&self) -> Vec<RecordedRequest> {
        self.deployment_patches().into_iter().filter(|w| content_type(w) == MERGE_PATCH).collect()
    }

    /// Rollbacks are JSON patches of the Deployment (`kubectl rollout undo`'s change, with a resourceVersion).
    pub fn rollbacks(&self) -> Vec<RecordedRequest> {
        self.deployment_patches().into_iter().filter(|w| content_type(w) == JSON_PATCH).collect()
    }

    pub fn lease(&self) -> Option<Value> {
        self.fake.get_object("coordination.k8s.io/v1", "leases", LEASE_NS, LEASE)
    }

    pub fn lease_holder(&self) -> Option<String> {
        self.lease()?["spec"]["holderIdentity"].as_str().map(str::to_owned)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.sim_stop.cancel();
    }
}

/// The media type without parameters.
pub fn content_type(r: &RecordedRequest) -> &str {
    r.content_type.as_deref().unwrap_or("").split(';').next().unwrap_or("").trim()
}

pub async fn get_json(g: &Guardian, path: &str) -> Value {
    let r = reqwest::get(g.url(path)).await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(code, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
}

pub async fn status(g: &Guardian) -> Value {
    get_json(g, "/api/v1/status").await
}

/// POSTs `body` as JSON with the bearer token: the status code and the answer (`null` when not JSON).
pub async fn post_json(g: &Guardian, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(g.url(path))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The `no_drop` baseline `/api/v1/status` shows for this check and JSON Pointer, if taken.
pub async fn baseline(g: &Guardian, check: &str, path: &str) -> Option<f64> {
    let s = status(g).await;
    let all = s["baselines"].as_array()?;
    all.iter().find(|b| b["check"] == check && b["path"] == path).and_then(|b| b["value"].as_f64())
}

/// The reason a pause PATCH gave, in its merge patch body.
pub fn reason_of(pause: &RecordedRequest) -> String {
    pause.body["metadata"]["annotations"][REASON].as_str().unwrap_or_default().to_owned()
}

/// `/api/v1/actions`, oldest first.
pub async fn actions(g: &Guardian) -> Vec<Value> {
    let mut list = get_json(g, "/api/v1/actions").await["actions"].as_array().cloned().unwrap_or_default();
    list.reverse();
    list
}

/// How many of `actions` are this action with this outcome.
pub fn count(actions: &[Value], action: &str, outcome: &str) -> usize {
    actions.iter().filter(|a| a["action"] == action && a["outcome"] == outcome).count()
}

pub async fn incidents(g: &Guardian) -> Vec<Value> {
    get_json(g, "/api/v1/incidents").await["incidents"].as_array().cloned().unwrap_or_default()
}

/// `guardian_actions_total` for the guarded target, 0 when never counted.
pub async fn actions_total(g: &Guardian, target: &str, action: &str, outcome: &str) -> f64 {
    let text = reqwest::get(g.url("/metrics")).await.unwrap().text().await.unwrap();
    let labels = [("target", target), ("action", action), ("outcome", outcome)];
    sample(&text, "guardian_actions_total", &labels).unwrap_or(0.0)
}

/// Every check has a good result.
pub async fn healthy(g: &Guardian) {
    eventually(SETTLE, "every check is up", || async {
        let s = status(g).await;
        s["checks"].as_array().is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["up"] == true))
    })
    .await;
}

/// The watch has shown the guarded target.
pub async fn watching(g: &Guardian) {
    eventually(SETTLE, "the target is seen through the watch", || async {
        let s = status(g).await;
        s["targets"][0]["state_unknown"].is_null() && s["targets"][0]["template"].is_string()
    })
    .await;
}

/// This replica holds the Lease.
pub async fn leading(g: &Guardian) {
    eventually(SETTLE, "the replica leads", || async { leads(g).await }).await;
}

/// Healthy, watching and leading: ready for a rollout.
pub async fn ready(g: &Guardian) {
    healthy(g).await;
    watching(g).await;
    leading(g).await;
}

pub async fn leads(g: &Guardian) -> bool {
    status(g).await["guard"]["leader"] == true
}

/// The guard is armed on the target (it saw the rollout): a breach from now on is the change's.
pub async fn armed(g: &Guardian) {
    eventually(Duration::from_secs(5), "the guard arms on the rollout", || async {
        status(g).await["targets"][0]["armed"] == true
    })
    .await;
}

/// SIGKILL: nothing is released, nothing is flushed.
pub fn kill(g: &mut Guardian) {
    g.child.kill().unwrap();
    g.child.wait().unwrap();
}
