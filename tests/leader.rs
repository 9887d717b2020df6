#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Leader election on a `coordination.k8s.io/v1` Lease against the stateful
//! fake API server: one leader at a time, failover after a kill, a quick
//! handover on a graceful stop, fencing by time when renewals fail, and a
//! 409 race for an expired lease won by exactly one replica.

mod support;

use std::sync::Arc;
use std::time::Duration;

use guardian::clock::SystemClock;
use guardian::leader::{Leadership, LeaseElector, LeaseTiming};
use serde_json::Value;
use support::eventually::eventually;
use support::fake_apiserver::{FakeApiServer, Matcher, objects};
use support::replica::{knows_holder, leading};
use tokio::time::{Instant, sleep};

const NS: &str = "blueocean-nextgen-prod";
const NAME: &str = "guardian-leader";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/blueocean-nextgen-prod/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/blueocean-nextgen-prod/leases/guardian-leader";

/// A renewal holds for two thirds of the lease: 1.33 s here.
const FAST: LeaseTiming = LeaseTiming {
    lease_duration: Duration::from_secs(2),
    renew_every: Duration::from_millis(400),
    retry_every: Duration::from_millis(200),
};

struct Cluster {
    fake: FakeApiServer,
    client: kube::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        let fake = FakeApiServer::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = kube::config::Kubeconfig::read_from(fake.kubeconfig(dir.path())).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
        Self { fake, client: kube::Client::try_from(config).unwrap(), _dir: dir }
    }

    fn replica(&self, identity: &str, timing: LeaseTiming) -> Replica {
        let elector =
            Arc::new(LeaseElector::new(self.client.clone(), NS, NAME, identity, timing, Arc::new(SystemClock)));
        Replica::start(elector, |elector, stop| elector.run(stop))
    }

    fn lease(&self) -> Value {
        self.fake.get_object("coordination.k8s.io/v1", "leases", NS, NAME).expect("the Lease exists")
    }

    fn lease_spec(&self, field: &str) -> Value {
        self.lease()["spec"][field].clone()
    }
}

type Replica = support::replica::Replica<LeaseElector>;

fn resource_version(lease: &Value) -> String {
    lease["metadata"]["resourceVersion"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_lone_replica_creates_the_lease_leads_and_keeps_renewing_it() {
    let cluster = Cluster::start().await;
    let a = cluster.replica("guardian-a", FAST);
    leading(&a, Duration::from_secs(2)).await;

    let writes = cluster.fake.writes();
    assert_eq!((writes[0].method.as_str(), writes[0].path.as_str()), ("POST", LEASES));
    let spec = cluster.lease()["spec"].clone();
    assert_eq!(spec["holderIdentity"], "guardian-a");
    assert_eq!(spec["leaseDurationSeconds"], 2);
    assert_eq!(spec["leaseTransitions"], 0);
    let renew_time = spec["renewTime"].as_str().unwrap();
    assert!(renew_time.contains('.') && renew_time.ends_with('Z'), "a MicroTime: {renew_time}");
    assert_eq!(spec["acquireTime"], spec["renewTime"]);
    assert_eq!(a.lock.holder().as_deref(), Some("guardian-a"));
    assert!(*a.lock.changes().borrow());

    let created = resource_version(&cluster.lease());
    eventually(Duration::from_secs(2), "a renewal", || async { resource_version(&cluster.lease()) != created }).await;
    let renewed = cluster.lease()["spec"].clone();
    assert_eq!(
        (renewed["holderIdentity"].clone(), renewed["leaseTransitions"].clone()),
        (spec["holderIdentity"].clone(), spec["leaseTransitions"].clone())
    );
    assert_eq!(renewed["acquireTime"], spec["acquireTime"], "a renewal keeps the acquire time");
    assert_ne!(renewed["renewTime"], spec["renewTime"]);
    let puts = cluster.fake.writes().into_iter().filter(|w| w.method == "PUT").collect::<Vec<_>>();
    assert!(puts.iter().all(|w| w.path == LEASE && w.body["metadata"]["resourceVersion"].is_string()), "{puts:?}");
}

#[tokio::test]
async fn of_two_replicas_exactly_one_leads_at_every_sample() {
    let cluster = Cluster::start().await;
    let (a, b) = (cluster.replica("guardian-a", FAST), cluster.replica("guardian-b", FAST));
    eventually(Duration::from_secs(2), "someone leads", || async { a.leads() || b.leads() }).await;

    let until = Instant::now() + Duration::from_secs(3);
    let mut samples = 0;
    while Instant::now() < until {
        let (la, lb) = (a.leads(), b.leads());
        assert!(la != lb, "sample {samples}: a leads {la}, b leads {lb}");
        samples += 1;
        sleep(Duration::from_millis(50)).await;
    }
    assert!(samples > 40, "{samples} samples");
    let holder = if a.leads() { "guardian-a" } else { "guardian-b" };
    assert_eq!(cluster.lease_spec("holderIdentity"), holder);
    assert_eq!(cluster.lease_spec("leaseTransitions"), 0, "nobody took over from anybody");
    knows_holder(&a, holder).await;
    knows_holder(&b, holder).await;
}

#[tokio::test]
async fn a_killed_leader_is_replaced_once_its_lease_expires_and_never_overlaps() {
    let cluster = Cluster::start().await;
    let a = cluster.replica("guardian-a", FAST);
    leading(&a, Duration::from_secs(2)).await;
    let b = cluster.replica("guardian-b", FAST);
    knows_holder(&b, "guardian-a").await;

    a.kill();
    let killed = Instant::now();
    let limit = FAST.lease_duration + FAST.retry_every + Duration::from_secs(1);
    let mut a_lapsed = false;
    loop {
        let (la, lb) = (a.leads(), b.leads());
        assert!(!(la && lb), "b leads only once a's leadership lapsed");
        a_lapsed |= !la;
        if lb {
            break;
        }
        assert!(killed.elapsed() < limit, "b did not take over within {limit:?}");
        sleep(Duration::from_millis(20)).await;
    }
    assert!(a_lapsed, "a was seen not leading before b took over");
    let took = killed.elapsed();

    // a's last renewal was at most renew_every before the kill, and b waits a whole lease after seeing it.
    assert!(took >= FAST.lease_duration - FAST.renew_every, "b took over after {took:?}, before the lease expired");
    assert!(!a.leads(), "the killed replica's leadership lapsed by time");
    assert_eq!(cluster.lease_spec("holderIdentity"), "guardian-b");
    assert_eq!(cluster.lease_spec("leaseTransitions"), 1);
}

#[tokio::test]
async fn a_graceful_stop_releases_the_lease_and_the_other_replica_takes_over_at_once() {
    let slow = LeaseTiming { lease_duration: Duration::from_secs(4), ..FAST };
    let cluster = Cluster::start().await;
    let a = cluster.replica("guardian-a", slow);
    leading(&a, Duration::from_secs(2)).await;
    let b = cluster.replica("guardian-b", slow);
    knows_holder(&b, "guardian-a").await;
    let a_changes = a.lock.changes();

    let a = a.stop().await;
    let stopped = Instant::now();
    assert!(!a.is_leader() && !*a_changes.borrow());
    assert_eq!(a.holder(), None);
    let release = cluster.fake.writes().into_iter().rfind(|w| w.body["spec"]["holderIdentity"].is_null()).unwrap();
    assert_eq!((release.method.as_str(), release.path.as_str()), ("PUT", LEASE));

    leading(&b, Duration::from_secs(1)).await;
    assert!(stopped.elapsed() < slow.lease_duration / 4, "took {:?}", stopped.elapsed());
    assert_eq!(cluster.lease_spec("holderIdentity"), "guardian-b");
    assert_eq!(cluster.lease_spec("leaseTransitions"), 1);
}

#[tokio::test]
async fn a_leader_whose_renewals_fail_stops_leading_before_its_lease_expires_and_leads_again_after() {
    let cluster = Cluster::start().await;
    let a = cluster.replica("guardian-a", FAST);
    leading(&a, Duration::from_secs(2)).await;
    let mut changes = a.lock.changes();
    let before = resource_version(&cluster.lease());
    eventually(Duration::from_secs(2), "a renewal", || async { resource_version(&cluster.lease()) != before }).await;
    let renewed = Instant::now();

    // About 2.4 s of answers 500 at one call per retry_every: longer than a renewal holds.
    cluster.fake.fail_next(12, Matcher::any().path(LEASE), 500);
    while a.leads() {
        assert!(renewed.elapsed() < FAST.lease_duration, "still leading after the lease could have been taken");
        sleep(Duration::from_millis(10)).await;
    }
    let lapsed = renewed.elapsed();
    assert!(lapsed >= Duration::from_secs(1), "one failed call must not end leadership; time does ({lapsed:?})");
    tokio::time::timeout(Duration::from_millis(200), changes.wait_for(|leads| !*leads)).await.unwrap().unwrap();
    assert!(cluster.fake.pending_faults() > 0, "still failing when leadership lapsed");

    eventually(Duration::from_secs(5), "leads again once the API answers", || async {
        cluster.fake.pending_faults() == 0 && a.leads()
    })
    .await;
    assert!(*changes.borrow_and_update());
    assert_eq!(cluster.lease_spec("holderIdentity"), "guardian-a");
    assert_eq!(cluster.lease_spec("leaseTransitions"), 0, "renewed, never handed over");
}

#[tokio::test]
async fn two_replicas_racing_for_an_expired_lease_conflict_and_exactly_one_wins() {
    let cluster = Cluster::start().await;
    let seeded = cluster.fake.put_object(objects::lease(NS, NAME, "guardian-dead", 1));
    // Both takeovers wait in the server long enough for the other replica to read the same version and try too.
    cluster.fake.delay_next(2, Matcher::method("PUT").path(LEASE), Duration::from_millis(800));
    let (a, b) = (cluster.replica("guardian-a", FAST), cluster.replica("guardian-b", FAST));

    eventually(Duration::from_secs(4), "someone leads", || async { a.leads() || b.leads() }).await;
    let (winner, loser) = if a.leads() { ("guardian-a", &b) } else { ("guardian-b", &a) };
    knows_holder(loser, winner).await;
    assert!(a.leads() != b.leads(), "exactly one leads");

    let puts: Vec<_> = cluster.fake.writes().into_iter().filter(|w| w.method == "PUT").collect();
    let takeovers: Vec<_> = puts
        .iter()
        .take(2)
        .map(|w| (w.body["spec"]["holderIdentity"].clone(), w.body["metadata"]["resourceVersion"].clone()))
        .collect();
    let version = Value::String(resource_version(&seeded));
    assert!(takeovers.len() == 2 && takeovers.iter().all(|(_, rv)| *rv == version), "{takeovers:?}");
    assert_ne!(takeovers[0].0, takeovers[1].0, "each replica tried once");
    assert_eq!(cluster.lease_spec("holderIdentity"), winner);
    assert_eq!(cluster.lease_spec("leaseTransitions"), 1, "one takeover went through");
}

#[tokio::test]
async fn a_409_on_renewal_ends_leadership_at_once_not_when_the_renewal_would_lapse() {
    let cluster = Cluster::start().await;
    let a = cluster.replica("guardian-a", FAST);
    leading(&a, Duration::from_secs(2)).await;

    cluster.fake.fail_next(1, Matcher::method("PUT").path(LEASE), 409);
    let armed = Instant::now();
    eventually(Duration::from_secs(1), "a stops leading", || async { !a.leads() }).await;
    let gone = armed.elapsed();
    assert!(gone < FAST.renew_every + Duration::from_millis(300), "after {gone:?}, not at the next renewal");

    // The Lease still names it and nobody else wants it: the next round renews.
    leading(&a, Duration::from_secs(2)).await;
    assert_eq!(cluster.lease_spec("leaseTransitions"), 0);
}
