#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Leader election on a Redis lock, and one-time claims, against the real
//! Redis at 127.0.0.1:6379: one leader at a time, failover after a kill only
//! once the TTL ran out, fencing tokens that refuse a stale leader, a quick
//! handover on a clean stop, riding out a short outage, and a Redis that is
//! not there failing every call within 2 s. Each test has a key prefix of
//! its own, deleted at the end.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guardian::clock::SystemClock;
use guardian::coord::{CALL_TIMEOUT, CoordError, Coordinator};
use guardian::leader::{Leadership, LockTiming, RedisLock};
use support::eventually::eventually;
use support::redis::{TestPrefix, redis_url_or_skip};
use support::replica::{knows_holder, leading};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

/// A renewal holds for two thirds of the TTL: 1 s here.
const FAST: LockTiming = LockTiming {
    ttl: Duration::from_millis(1500),
    renew_every: Duration::from_millis(300),
    retry_every: Duration::from_millis(200),
};

const LOCK: &str = "guardian:leader";
const FENCE: &str = "guardian:fence";

type Replica = support::replica::Replica<RedisLock>;

fn replica(url: &str, keys: &TestPrefix, identity: &str, timing: LockTiming) -> Replica {
    let coord = Coordinator::new(url, keys.prefix.clone()).unwrap();
    let lock = Arc::new(RedisLock::new(coord, identity, timing, Arc::new(SystemClock)));
    Replica::start(lock, |lock, stop| lock.run(stop))
}

#[tokio::test]
async fn of_two_locks_on_one_prefix_exactly_one_leads_at_every_sample() {
    let Some(url) = redis_url_or_skip().await else { return };
    let keys = TestPrefix::new();
    let (a, b) = (replica(url, &keys, "guardian-a", FAST), replica(url, &keys, "guardian-b", FAST));
    eventually(Duration::from_secs(2), "someone leads", || async { a.leads() || b.leads() }).await;

    let until = Instant::now() + Duration::from_secs(2);
    let mut samples = 0;
    while Instant::now() < until {
        let (la, lb) = (a.leads(), b.leads());
        assert!(la != lb, "sample {samples}: a leads {la}, b leads {lb}");
        samples += 1;
        sleep(Duration::from_millis(50)).await;
    }
    assert!(samples > 30, "{samples} samples");
    let (leader, name) = if a.leads() { (&a, "guardian-a") } else { (&b, "guardian-b") };
    knows_holder(&a, name).await;
    knows_holder(&b, name).await;
    let token = leader.lock.fencing_token().expect("the leader has a token");
    assert_eq!(keys.get(LOCK).await, Some(format!("{name}:{token}")));
    assert_eq!(keys.get(FENCE).await, Some(token.to_string()), "one acquisition, one token");
    assert!(leader.lock.confirm().await);
    let follower = if a.leads() { &b } else { &a };
    assert_eq!(follower.lock.fencing_token(), None);
    assert!(!follower.lock.confirm().await);
    assert!(*leader.lock.changes().borrow() && !*follower.lock.changes().borrow());
    let ttl = keys.pttl(LOCK).await;
    assert!(ttl > 0 && ttl <= 1500, "the lock expires on its own: PTTL {ttl} ms");
    assert_eq!(keys.pttl(FENCE).await, -1, "the fencing counter never expires");
}

#[tokio::test]
async fn a_killed_holder_is_replaced_once_the_ttl_ran_out_with_a_greater_token() {
    let Some(url) = redis_url_or_skip().await else { return };
    let keys = TestPrefix::new();
    let a = replica(url, &keys, "guardian-a", FAST);
    leading(&a, Duration::from_secs(2)).await;
    let t1 = a.lock.fencing_token().unwrap();
    let b = replica(url, &keys, "guardian-b", FAST);
    knows_holder(&b, "guardian-a").await;

    a.kill();
    let killed = Instant::now();
    let limit = FAST.ttl + FAST.retry_every + Duration::from_secs(1);
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
    let took = killed.elapsed();
    eprintln!("b took over {took:?} after the kill (TTL {:?})", FAST.ttl);
    assert!(a_lapsed, "a was seen not leading before b took over");
    // a's last renewal reached Redis at most renew_every before the kill; the key outlives it by the TTL.
    assert!(took >= Duration::from_secs(1), "b took over after {took:?}, before the lock expired");
    let t2 = b.lock.fencing_token().unwrap();
    assert!(t2 > t1, "tokens grow: {t1} then {t2}");
    assert_eq!(b.lock.holder().as_deref(), Some("guardian-b"));
    assert_eq!(keys.get(LOCK).await, Some(format!("guardian-b:{t2}")));
}

#[tokio::test]
async fn a_stale_leader_cannot_confirm_once_another_holds_a_greater_token() {
    let Some(url) = redis_url_or_skip().await else { return };
    let keys = TestPrefix::new();
    let a = replica(url, &keys, "guardian-a", FAST);
    leading(&a, Duration::from_secs(2)).await;
    let t1 = a.lock.fencing_token().unwrap();
    assert!(a.lock.confirm().await, "the live leader confirms");

    a.kill();
    let b = replica(url, &keys, "guardian-b", FAST);
    leading(&b, FAST.ttl + Duration::from_secs(2)).await;
    let t2 = b.lock.fencing_token().unwrap();
    assert!(t2 > t1, "tokens grow: {t1} then {t2}");
    assert!(!a.lock.confirm().await);
    assert!(!a.leads());
    assert_eq!(a.lock.fencing_token(), None);
    assert!(b.lock.confirm().await);
}

/// The lock vanished under a leader that does not know it yet (an eviction, a Redis failover that lost
/// the write): it still believes it leads, but Redis has the last word before it acts.
#[tokio::test]
async fn a_leader_that_still_believes_it_leads_is_refused_by_redis() {
    let Some(url) = redis_url_or_skip().await else { return };
    let keys = TestPrefix::new();
    let slow = LockTiming { ttl: Duration::from_secs(6), ..FAST };
    let a = replica(url, &keys, "guardian-a", slow);
    leading(&a, Duration::from_secs(2)).await;
    let t1 = a.lock.fencing_token().unwrap();
    a.kill();
    keys.del(LOCK).await;
    let b = replica(url, &keys, "guardian-b", FAST);
    leading(&b, Duration::from_secs(2)).await;
    let t2 = b.lock.fencing_token().unwrap();
    assert!(t2 > t1, "tokens grow: {t1} then {t2}");

    assert!(a.leads(), "a's local validity (4 s) has not run out: it believes it leads");
    assert!(!a.lock.confirm().await, "Redis says the lock holds guardian-b:{t2}");
    assert!(!a.leads(), "a refused confirmation ends a's leadership at once");
    assert!(!*a.lock.changes().borrow());
    assert!(b.lock.confirm().await);
}

#[tokio::test]
async fn a_token_overtaken_by_the_fencing_counter_cannot_confirm() {
    let Some(url) = redis_url_or_skip().await else { return };
    let keys = TestPrefix::new();
    let a = replica(url, &keys, "guardian-a", FAST);
    leading(&a, Duration::from_secs(2)).await;
    assert!(a.lock.confirm().await);
    keys.incr(FENCE).await;
    assert!(!a.lock.confirm().await, "a later token was handed out");
    a.stop().await;
}

#[tokio::test]
async fn a_clean_stop_releases_the_lock_and_the_other_takes_over_well_before_the_ttl() {
    let Some(url) = redis_url_or_skip().await else { return };
    let keys = TestPrefix::new();
    let slow = LockTiming { ttl: Duration::from_secs(4), ..FAST };
    let a = replica(url, &keys, "guardian-a", slow);
    leading(&a, Duration::from_secs(2)).await;
    let t1 = a.lock.fencing_token().unwrap();
    let b = replica(url, &keys, "guardian-b", slow);
    knows_holder(&b, "guardian-a").await;
    let a_changes = a.lock.changes();

    let a = a.stop().await;
    let stopped = Instant::now();
    assert!(!a.is_leader());
    assert!(!*a_changes.borrow(), "the stop is published");
    leading(&b, Duration::from_secs(1)).await;
    let took = stopped.elapsed();
    eprintln!("b took over {took:?} after a clean stop (TTL {:?})", slow.ttl);
    assert!(took < slow.ttl / 4, "took {took:?}");
    assert!(b.lock.fencing_token().unwrap() > t1);
}

#[tokio::test]
async fn a_leader_rides_out_a_short_outage_and_leads_again_with_the_same_token() {
    if redis_url_or_skip().await.is_none() {
        return;
    }
    let keys = TestPrefix::new();
    let proxy = Proxy::start().await;
    // Leads for 2.67 s after each renewal; the key lives 4 s, so a renewal just after the lapse still finds it.
    let timing = LockTiming { ttl: Duration::from_secs(4), ..FAST };
    let a = replica(&proxy.url(), &keys, "guardian-a", timing);
    leading(&a, Duration::from_secs(2)).await;
    let token = a.lock.fencing_token().unwrap();

    proxy.cut();
    let cut = Instant::now();
    eventually(Duration::from_secs(4), "a stops leading by time", || async { !a.leads() }).await;
    eprintln!("a stopped leading {:?} after Redis went away", cut.elapsed());
    assert!(cut.elapsed() >= Duration::from_secs(2), "a kept leading until its validity ran out");
    let health = a.lock.redis_health();
    assert!(!health.reachable && !a.lock.redis_health().reachable);
    assert!(health.last_error.as_deref().is_some_and(|e| e.contains(&proxy.url())), "{health:?}");
    assert!(!a.lock.confirm().await);

    proxy.restore();
    eventually(Duration::from_secs(2), "a leads again", || async { a.leads() }).await;
    assert_eq!(a.lock.fencing_token(), Some(token), "a renewal, not a new acquisition");
    assert!(a.lock.redis_health().reachable);
    assert!(a.lock.confirm().await);
    a.stop().await;
}

#[tokio::test]
async fn claims_keep_the_first_value_and_only_that_value_releases_them() {
    let Some(url) = redis_url_or_skip().await else { return };
    let keys = TestPrefix::new();
    let coord = Coordinator::new(url, keys.prefix.clone()).unwrap();
    coord.ping().await.unwrap();
    let ttl = Duration::from_secs(5);

    assert_eq!(coord.claim("claim:rollback", "guardian-a", ttl).await.unwrap(), "guardian-a");
    assert_eq!(coord.claim("claim:rollback", "guardian-b", ttl).await.unwrap(), "guardian-a");
    let pttl = keys.pttl("claim:rollback").await;
    assert!(pttl > 0 && pttl <= 5000, "PTTL {pttl} ms");
    assert!(!coord.release("claim:rollback", "guardian-b").await.unwrap());
    assert_eq!(keys.get("claim:rollback").await.as_deref(), Some("guardian-a"));
    assert!(coord.release("claim:rollback", "guardian-a").await.unwrap());
    assert_eq!(keys.get("claim:rollback").await, None);
    assert!(!coord.release("claim:rollback", "guardian-a").await.unwrap(), "nothing left to release");

    let racers = (0..10).map(|i| {
        let coord = coord.clone();
        tokio::spawn(async move { coord.claim("claim:race", &format!("r{i}"), ttl).await.unwrap() })
    });
    let answers: Vec<String> = futures_util::future::join_all(racers).await.into_iter().map(Result::unwrap).collect();
    assert!(answers.iter().all(|a| *a == answers[0]), "one winner for all: {answers:?}");
    assert_eq!(keys.get("claim:race").await, Some(answers[0].clone()));

    let health = coord.health();
    assert!(health.reachable && health.last_error.is_none(), "{health:?}");
}

#[tokio::test]
async fn an_unreachable_redis_fails_every_call_fast_names_its_url_and_never_leads() {
    let keys = TestPrefix::new();
    let coord = Coordinator::new("redis://:s3cret@127.0.0.1:1", keys.prefix.clone()).unwrap();
    type Call<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), CoordError>> + 'a>>;
    let calls: [(&str, Call); 3] = [
        ("ping", Box::pin(coord.ping())),
        ("claim", Box::pin(async { coord.claim("claim:x", "v", Duration::from_secs(5)).await.map(drop) })),
        ("release", Box::pin(async { coord.release("claim:x", "v").await.map(drop) })),
    ];
    for (name, call) in calls {
        let started = Instant::now();
        let err = call.await.unwrap_err();
        let took = started.elapsed();
        assert!(took <= CALL_TIMEOUT + Duration::from_millis(500), "{name} took {took:?}");
        let text = err.to_string();
        assert!(text.contains("redis://:***@127.0.0.1:1") && !text.contains("s3cret"), "{name}: {text}");
        let health = coord.health();
        assert!(!health.reachable, "{name}");
        assert_eq!(health.last_error, Some(text), "{name}");
    }

    let lock = Arc::new(RedisLock::new(coord, "guardian-a", FAST, Arc::new(SystemClock)));
    let stop = CancellationToken::new();
    let task = tokio::spawn(lock.clone().run(stop.clone()));
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert!(!lock.is_leader());
        sleep(Duration::from_millis(50)).await;
    }
    assert!(!lock.confirm().await);
    assert_eq!(lock.holder(), None);
    assert!(!lock.redis_health().reachable && lock.redis_health().last_error.is_some());
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(3), task).await.expect("run returns after stop").unwrap();
}

/// A server that accepts connections and never answers: every call gives up at the 2 s bound.
#[tokio::test]
async fn a_redis_that_never_answers_holds_a_caller_for_at_most_two_seconds() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let sink = held.clone();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            sink.lock().unwrap().push(socket);
        }
    });
    let url = format!("redis://{addr}");
    let coord = Coordinator::new(&url, "guardian-test:silent:").unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        let err = coord.ping().await.unwrap_err();
        let took = started.elapsed();
        eprintln!("a silent Redis failed the call after {took:?}: {err}");
        assert!(took <= CALL_TIMEOUT + Duration::from_millis(500), "took {took:?}");
        assert!(err.to_string().contains(&url), "{err}");
        assert_eq!(err.code(), "timed_out", "{err}");
        assert!(!coord.health().reachable);
    }
    server.abort();
}

/// A TCP proxy to the local Redis that can be cut (every connection dropped, new ones refused
/// after accept) and restored, on the same address.
struct Proxy {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (accept_up, accept_conns) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    continue;
                }
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accept_conns.lock().unwrap().push(conn);
            }
        });
        Self { addr, up, conns, accept }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
