use jiff::Timestamp;

use super::*;
use crate::config::Environment;
use crate::notify::DeliveryState;

fn rollup(check: &str, minute: i64, good: u64, total: u64) -> Write {
    Write::Rollup(MinuteRollup { check: check.into(), minute, good, total })
}

fn action(id: &str) -> Write {
    Write::Action(ActionRecord {
        id: id.into(),
        at: Timestamp::UNIX_EPOCH,
        target: "blueocean-nextgen-prod/Deployment/nextgen-dashboard".into(),
        action: "pause".into(),
        outcome: "ok".into(),
        incident: None,
        detail: String::new(),
    })
}

fn backup(id: &str) -> Write {
    Write::Backup(Backup {
        environment: Environment::Prod,
        id: id.into(),
        completed_at: Timestamp::UNIX_EPOCH,
        ok: true,
    })
}

fn incident(id: &str, probes_bad: u64) -> Write {
    Write::Incident(Incident {
        id: id.into(),
        check: "payments-health".into(),
        started_at: Timestamp::UNIX_EPOCH,
        ended_at: None,
        worst_latency: std::time::Duration::from_secs(4),
        p95_latency: std::time::Duration::from_secs(3),
        probes_total: 5,
        probes_bad,
        revenue_at_risk_eur: 12.5,
        reason: "slow".into(),
    })
}

fn delivery(key: &str, channel: &str, state: DeliveryState, attempts: u32) -> Write {
    Write::Delivery(Delivery {
        key: key.into(),
        channel: channel.into(),
        payload: format!(r#"{{"key":"{key}"}}"#),
        created_at: Timestamp::UNIX_EPOCH,
        state,
        attempts,
        next_attempt_at: Timestamp::UNIX_EPOCH,
        last_error: (attempts > 0).then(|| "connection refused".into()),
        done_at: state.is_final().then_some(Timestamp::UNIX_EPOCH),
    })
}

/// (key, channel, attempts) of each delivery `ops` would store.
fn deliveries(ops: &[Op]) -> Vec<(String, String, u32)> {
    let of = |op: &Op| match op {
        Op::Delivery(_, d) => Some((d.key.clone(), d.channel.clone(), d.attempts)),
        _ => None,
    };
    ops.iter().filter_map(of).collect()
}

/// A short name per op, to read an order at a glance.
fn name(op: &Op) -> String {
    match op {
        Op::Rollups(rows) => format!("{} roll-ups", rows.len()),
        Op::Incident(_, i) => format!("incident {}", i.id),
        Op::Migration(_, m) => format!("migration {}", m.id),
        Op::Delivery(_, d) => format!("delivery {}/{}", d.key, d.channel),
        Op::Append(Ordered::Action(a)) => format!("action {}", a.id),
        Op::Append(Ordered::Backup(b)) => format!("backup {}", b.id),
        Op::Append(Ordered::GateDecision(d)) => format!("gate {}", d.evaluated_at),
    }
}

fn queued(writes: impl IntoIterator<Item = Write>) -> Pending {
    let mut p = Pending::default();
    writes.into_iter().for_each(|w| p.push(w));
    p
}

fn store_all(p: &mut Pending, max: usize) -> Vec<Op> {
    let ops = p.take(max);
    ops.iter().for_each(|op| p.done(op));
    ops
}

#[test]
fn rollups_of_one_check_and_minute_coalesce_to_the_newest() {
    let mut p = queued([rollup("a", 1, 1, 1), rollup("a", 1, 3, 4), rollup("a", 2, 1, 1), rollup("b", 1, 0, 1)]);
    assert_eq!(p.len(), 3);
    let ops = store_all(&mut p, 10);
    let Op::Rollups(rows) = &ops[0] else { panic!("roll-ups first: {ops:?}") };
    let a1 = rows.iter().find(|(_, r)| r.check == "a" && r.minute == 1).map(|(_, r)| (r.good, r.total));
    assert_eq!(a1, Some((3, 4)));
    assert!(p.is_empty());
}

#[test]
fn incidents_coalesce_by_id() {
    let mut p = queued([incident("i1", 1), incident("i1", 3), incident("i2", 1)]);
    assert_eq!(p.len(), 2);
    let ops = store_all(&mut p, 10);
    assert!(ops.iter().any(|op| matches!(op, Op::Incident(_, i) if i.id == "i1" && i.probes_bad == 3)));
}

#[test]
fn appends_keep_their_order_and_never_coalesce() {
    let mut p = queued([action("a1"), backup("b1"), action("a1"), action("a2")]);
    assert_eq!(p.len(), 4);
    let ids: Vec<String> = store_all(&mut p, 10)
        .into_iter()
        .map(|op| match op {
            Op::Append(Ordered::Action(a)) => a.id,
            Op::Append(Ordered::Backup(b)) => format!("backup {}", b.id),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(ids, ["a1", "backup b1", "a1", "a2"]);
}

#[test]
fn a_batch_takes_at_most_max_writes_and_the_rest_waits() {
    let mut p = queued((0..5).map(|m| rollup("a", m, 1, 1)).chain([incident("i", 1), action("x"), action("y")]));
    let first = p.take(6);
    assert_eq!(count_writes(&first), 6);
    first.iter().for_each(|op| p.done(op));
    assert_eq!(p.len(), 2);
    let rest = store_all(&mut p, 6);
    assert_eq!(count_writes(&rest), 2);
    assert!(p.is_empty());
}

#[test]
fn taking_a_batch_removes_nothing_until_it_is_done() {
    let p = queued([rollup("a", 1, 1, 1), action("x")]);
    let _ = p.take(10);
    assert_eq!(p.len(), 2);
}

#[test]
fn a_newer_write_queued_during_a_flush_survives_it() {
    let mut p = queued([rollup("a", 1, 1, 1), incident("i", 1)]);
    let in_flight = p.take(10);
    p.push(rollup("a", 1, 2, 2));
    p.push(incident("i", 2));
    in_flight.iter().for_each(|op| p.done(op));
    assert_eq!(p.len(), 2);
    let again = p.take(10);
    assert!(again.iter().any(|op| matches!(op, Op::Rollups(rows) if rows[0].1.total == 2)));
    assert!(again.iter().any(|op| matches!(op, Op::Incident(_, i) if i.probes_bad == 2)));
}

#[test]
fn after_an_outage_appends_and_incidents_go_before_a_backlog_of_rollups() {
    let rollups = (0..10).map(|m| rollup("payments-health", m, 1, 1));
    let p = queued(rollups.chain([incident("inc-1", 3), action("pause-1"), backup("b-1")]));
    let ops = p.take(3);
    assert!(matches!(ops[0], Op::Append(_)) && matches!(ops[1], Op::Append(_)), "the audit log and backups first");
    assert!(matches!(ops[2], Op::Incident(..)), "then incidents");
    assert_eq!(ops.len(), 3, "roll-ups wait for the next batch");
}

#[test]
fn deliveries_of_one_key_and_channel_coalesce_to_the_newest() {
    use DeliveryState::Pending;
    let mut p = queued([
        delivery("i1:opened", "alertmanager", Pending, 0),
        delivery("i1:opened", "alertmanager", Pending, 1),
        delivery("i1:opened", "webhook-slack-1a2b", Pending, 0),
        delivery("i1:opened", "alertmanager", Pending, 2),
    ]);
    assert_eq!(p.len(), 2, "another channel is another delivery");
    let stored = deliveries(&store_all(&mut p, 10));
    assert_eq!(
        stored,
        [("i1:opened".into(), "webhook-slack-1a2b".into(), 0), ("i1:opened".into(), "alertmanager".into(), 2)],
        "the coalesced one counts from its newest write"
    );
    assert!(p.is_empty());
}

#[test]
fn a_queued_final_delivery_is_never_replaced_by_a_stale_write() {
    use DeliveryState::{Abandoned, Delivered, Pending};
    let p = queued([
        delivery("i1:opened", "alertmanager", Pending, 1),
        delivery("i1:opened", "alertmanager", Delivered, 2),
        delivery("i1:opened", "alertmanager", Pending, 1),
        delivery("i1:closed", "alertmanager", Abandoned, 8),
        delivery("i1:closed", "alertmanager", Delivered, 9),
    ]);
    let states: Vec<_> = p
        .take(10)
        .into_iter()
        .filter_map(|op| if let Op::Delivery(_, d) = op { Some(d.state) } else { None })
        .collect();
    assert_eq!(states, [Delivered, Abandoned], "the first final state wins, as in the store");
}

#[test]
fn deliveries_go_with_appends_in_the_order_queued_before_everything_else() {
    use DeliveryState::Pending;
    let p = queued([
        rollup("a", 1, 1, 1),
        incident("inc-1", 3),
        action("pause-1"),
        delivery("inc-1:opened", "alertmanager", Pending, 0),
        backup("b-1"),
        delivery("inc-1:paused", "alertmanager", Pending, 0),
        action("rollback-1"),
    ]);
    let order: Vec<String> = p.take(10).iter().map(name).collect();
    let want = [
        "action pause-1",
        "delivery inc-1:opened/alertmanager",
        "backup b-1",
        "delivery inc-1:paused/alertmanager",
        "action rollback-1",
        "incident inc-1",
        "1 roll-ups",
    ];
    assert_eq!(order, want);
    assert_eq!(p.take(2).iter().map(name).collect::<Vec<_>>(), want[..2], "a small batch takes the oldest");
}

#[test]
fn deliveries_and_appends_are_marked_done_one_by_one() {
    use DeliveryState::Pending;
    let mut p = queued([delivery("k", "alertmanager", Pending, 0), action("a1"), action("a2")]);
    let ops = p.take(10);
    ops[..2].iter().for_each(|op| p.done(op)); // the flush stopped before a2
    assert_eq!(p.take(10).iter().map(name).collect::<Vec<_>>(), ["action a2"]);
}

#[test]
fn a_newer_delivery_queued_during_a_flush_survives_it() {
    use DeliveryState::{Delivered, Pending};
    let mut p = queued([delivery("k", "alertmanager", Pending, 1)]);
    let in_flight = p.take(10);
    p.push(delivery("k", "alertmanager", Delivered, 2));
    in_flight.iter().for_each(|op| p.done(op));
    assert_eq!(deliveries(&store_all(&mut p, 10)), [("k".into(), "alertmanager".into(), 2)]);
    assert!(p.is_empty());
}
