//! Owns getting every notification to every configured channel, once.
//!
//! Flow: incidents (from `History`) and the guard's notices arrive through
//! an unbounded inbox, so nothing that acts ever waits on a receiver. The
//! intake turns each into a `Message` (`Composer`) and one `Delivery` per
//! channel, keyed by incident and event; the key is written to the outbox
//! in storage through the write queue and kept in memory. One worker per
//! channel sends its deliveries in order, retrying with exponential
//! back-off and jitter (`outbox::retry_wait`) until the receiver takes them
//! or `MAX_AGE` passes; a body refused `MAX_REFUSALS` times is abandoned.
//!
//! Never twice, never lost:
//! - a key already in the outbox (restored at start) is not enqueued again,
//!   so a restart re-sends nothing that was delivered;
//! - only the leader sends (the replica that may act). A notice is always
//!   queued where the action happened; incidents are queued by the leader
//!   and, with Redis, by every replica, so a failover loses none;
//! - with Redis, the first replica to see an incident claims
//!   `incident:{check}` with its id, and every replica queues the
//!   incident's messages under that id (replicas see the onset at slightly
//!   different probes, so their own ids differ); before a send, `sent:`
//!   says whether any replica made it, and a short-lived `sending:` claim
//!   keeps two replicas that both believe they lead from sending at once.
//!   A replica that dies mid-send holds `sending:` for `SENDING_FOR` at most.
//! - an incident that opens while Redis is down is queued under the
//!   replica's own id (`unclaimed`); once Redis answers, it is matched with
//!   the shared id (the check's claim, or, the claim being released on
//!   close, an incident of the check closed since whose times overlap it,
//!   `episodes:{check}`) and what is still queued under its own id is queued
//!   under the shared one instead, so the send markers apply to it. While
//!   Redis answers and the match is not made yet, its deliveries wait.
//!
//! Wall-clock jumps: a delivery's age (for `MAX_AGE`) is counted on the
//! monotonic clock while the process runs, and a due time further off than
//! any back-off (`outbox::LONGEST_WAIT`) is due now, so a clock stepped
//! forward abandons nothing and one stepped back holds nothing up.
//!
//! Alertmanager: each firing alert is sent again every
//! `notify.resend_every` (1 m), well within its 5 m `resolve_timeout`, and resolved (`endsAt`) with its
//! incident. An alert without an incident (missing data) ends by itself
//! after `LONE_ALERT_FOR`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::alertmanager::{Alert, AlertmanagerClient};
use super::compose::Composer;
use super::message::{Action, Event, Message};
use super::outbox::{self, Delivery, DeliveryState};
use super::webhook::{WebhookError, WebhookSender};
use super::{Notice, Notifier};
use crate::audit::ActionRecord;
use crate::clock::Clock;
use crate::config::Config;
use crate::coord::Coordinator;
use crate::history::IncidentListener;
use crate::incident::Incident;
use crate::leader::Leadership;
use crate::metrics::{Metrics, format_label};
use crate::store::{Store, StoreWriter};

/// How long an alert without an incident stays active.
const LONE_ALERT_FOR: Duration = Duration::from_secs(3600);
/// How far back the outbox is read at start: longer than `MAX_AGE`, so every
/// key that could be enqueued again is known.
const REMEMBER: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a shared claim on a send or an incident is kept in Redis.
const CLAIM_FOR: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a replica holds a send it is making: longer than a send can take (5 s).
const SENDING_FOR: Duration = Duration::from_secs(30);
/// A send under way elsewhere is looked at again after this.
const BUSY_WAIT: Duration = Duration::from_secs(2);
/// How often old keys and finished incidents are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Start-up waits this long for the outbox before sending without it.
const RESTORE_WAIT: Duration = Duration::from_secs(10);
const RESTORE_RETRY: Duration = Duration::from_secs(5);
/// How often start-up looks whether open incidents are back from storage.
const INCIDENTS_POLL: Duration = Duration::from_millis(50);
/// A follower looks this often whether it leads now.
const FOLLOWER_POLL: Duration = Duration::from_millis(500);
/// How often incidents announced while Redis was down are matched with
/// their shared id once it answers again.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);
/// A delivery of an incident whose shared id is not settled yet is looked at again after this.
const UNSETTLED_WAIT: Duration = Duration::from_millis(250);

/// Everything the courier works with.
pub struct Parts {
    pub config: Arc<Config>,
    pub composer: Composer,
    pub leadership: Arc<dyn Leadership>,
    pub coord: Option<Coordinator>,
    /// This replica's name in shared claims.
    pub identity: String,
    pub writer: StoreWriter,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Alertmanager(#[from] super::alertmanager::Error),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

pub struct Courier {
    composer: Composer,
    channels: Vec<Channel>,
    /// Firing alerts are sent again this often (`notify.resend_every`).
    resend_every: Duration,
    leadership: Arc<dyn Leadership>,
    coord: Option<Coordinator>,
    identity: String,
    writer: StoreWriter,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    inbox: mpsc::UnboundedSender<Input>,
    intake: Mutex<Option<mpsc::UnboundedReceiver<Input>>>,
    book: Mutex<Book>,
    /// The last `reconcile` could not match an incident though Redis
    /// answers (a read-only Redis, say): deliveries then wait on it no more.
    matching_fails: AtomicBool,
    ready: AtomicBool,
    ready_now: Notify,
}

struct Channel {
    /// Stable across restarts: `alertmanager` or `webhook-{format}-{url tag}`.
    id: String,
    /// The metric label: `alertmanager`, `slack`, `teams`, `generic`.
    label: &'static str,
    sender: Sender,
    wake: Notify,
}

enum Sender {
    Alertmanager(AlertmanagerClient),
    Webhook(WebhookSender),
}

enum Input {
    Opened(Incident),
    Closed(Incident),
    Notice(Notice),
}

#[derive(Default)]
struct Book {
    /// Pending deliveries per channel id, oldest first.
    queues: HashMap<String, VecDeque<Delivery>>,
    /// (key, channel) of every delivery known, sent or not, with when it was created.
    seen: HashMap<(String, String), Timestamp>,
    /// Alerts Alertmanager holds as firing, per incident, by alertname and target.
    firing: BTreeMap<String, BTreeMap<(String, String), Alert>>,
    /// The last thing Guardian did about each incident, for its resolve message.
    last_action: HashMap<String, Action>,
    /// A local incident id announced under another replica's id.
    alias: HashMap<String, String>,
    /// When each pending delivery (key, channel) came to be, on the monotonic
    /// clock: its age for `MAX_AGE`, whatever the wall clock did since.
    born: HashMap<(String, String), tokio::time::Instant>,
    /// Incidents queued under their own id because Redis could not say whose
    /// the check's incident was, by that id: matched with the shared id once
    /// Redis answers (`reconcile`).
    unclaimed: HashMap<String, Unclaimed>,
}

/// An incident announced under this replica's id while Redis was down.
#[derive(Debug, Clone)]
struct Unclaimed {
    check: String,
    started_at: Timestamp,
    /// When it closed here; `None` while open.
    ended_at: Option<Timestamp>,
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Another replica sent it.
    ElsewhereBy(String),
    /// Another replica is sending it now.
    Busy(String),
    /// Past `MAX_AGE`: abandoned without sending.
    TooOld,
    /// Queued again under its incident's shared id meanwhile: nothing to record.
    Superseded,
    /// Its incident's shared id is not settled yet while Redis answers: looked at again soon.
    Unsettled,
    Failed {
        error: String,
        refused: bool,
    },
}

impl Courier {
    pub fn new(p: Parts) -> Result<Arc<Self>, BuildError> {
        let mut channels = Vec::new();
        if !p.config.notify.alertmanager.is_empty() {
            let client = AlertmanagerClient::new(&p.config.notify.alertmanager)?;
            channels.push(Channel::new("alertmanager".into(), "alertmanager", Sender::Alertmanager(client)));
        }
        for w in &p.config.notify.webhooks {
            let label = format_label(w.format);
            let id = format!("webhook-{label}-{}", outbox::url_tag(w.url.as_str()));
            channels.push(Channel::new(id, label, Sender::Webhook(WebhookSender::new(w, None)?)));
        }
        let (inbox, intake) = mpsc::unbounded_channel();
        Ok(Arc::new(Self {
            resend_every: p.config.notify.resend_every,
            composer: p.composer,
            channels,
            leadership: p.leadership,
            coord: p.coord,
            identity: p.identity,
            writer: p.writer,
            metrics: p.metrics,
            clock: p.clock,
            inbox,
            intake: Mutex::new(Some(intake)),
            book: Mutex::default(),
            matching_fails: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            ready_now: Notify::new(),
        }))
    }

    /// Whether any channel is configured.
    pub fn has_channels(&self) -> bool {
        !self.channels.is_empty()
    }

    /// Starts the intake, one worker per channel and the Alertmanager
    /// re-send, until `stop`. Call once.
    pub fn start(self: &Arc<Self>, store: Arc<dyn Store>, stop: &CancellationToken, tracker: &TaskTracker) {
        let Some(intake) = lock(&self.intake).take() else { return };
        tracker.spawn(self.clone().intake_loop(intake, store, stop.clone()));
        for i in 0..self.channels.len() {
            tracker.spawn(self.clone().channel_loop(i, stop.clone()));
        }
    }

    async fn intake_loop(
        self: Arc<Self>,
        mut intake: mpsc::UnboundedReceiver<Input>,
        store: Arc<dyn Store>,
        stop: CancellationToken,
    ) {
        self.restore_at_start(store, &stop).await;
        self.await_incidents(&stop).await;
        let mut changes = self.leadership.changes();
        let mut changes_open = true;
        let mut leading = false;
        // Not at once: incidents restored from storage may not be open here yet,
        // and what is kept about them (their last action) would be swept away.
        let mut sweep = tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now_leading = self.leadership.is_leader();
            if now_leading && !leading {
                // A new leader (or a restart) announces what is open; keys
                // already sent, here or by the previous leader, are skipped.
                for incident in self.composer.open_incidents() {
                    self.take(Input::Opened(incident)).await;
                }
            }
            leading = now_leading;
            tokio::select! {
                () = stop.cancelled() => return,
                input = intake.recv() => match input {
                    Some(input) if self.accepts(&input) => self.take(input).await,
                    Some(_) => tracing::debug!("not the leader, and no Redis to share incidents: the leader tells"),
                    None => return,
                },
                changed = changes.changed(), if changes_open => changes_open = changed.is_ok(),
                () = tokio::time::sleep(FOLLOWER_POLL), if !leading => {}
                _ = sweep.tick() => self.sweep(),
                _ = reconcile.tick(), if self.coord.is_some() => self.reconcile().await,
            }
        }
    }

    /// What this replica queues. A notice is always kept: the action it
    /// tells of happened here, even if the leadership was lost since. An
    /// incident is kept by the leader, and by every replica when Redis
    /// shares the incident's id and the sends (a follower's copy is then
    /// sent only if it leads later, and only if nobody sent it).
    fn accepts(&self, input: &Input) -> bool {
        matches!(input, Input::Notice(_)) || self.coord.is_some() || self.leadership.is_leader()
    }

    /// Forgets keys older than the outbox is read back, and what is kept
    /// about incidents that are no longer open here.
    fn sweep(&self) {
        let Some(horizon) = self.clock.now().checked_sub(REMEMBER).ok() else { return };
        let open: HashSet<String> = self.composer.open_incident_ids().into_iter().collect();
        let mut book = lock(&self.book);
        book.seen.retain(|_, created| *created >= horizon);
        book.alias.retain(|local, _| open.contains(local));
        book.unclaimed.retain(|_, u| u.ended_at.is_none_or(|ended| ended >= horizon));
        let announced: HashSet<String> =
            open.iter().map(|id| book.alias.get(id).cloned().unwrap_or_else(|| id.clone())).collect();
        book.last_action.retain(|id, _| announced.contains(id));
    }

    /// Reads the outbox, waiting `RESTORE_WAIT` at most; if storage does not
    /// answer by then, goes on and merges the outbox once it does.
    async fn restore_at_start(self: &Arc<Self>, store: Arc<dyn Store>, stop: &CancellationToken) {
        let first = tokio::time::timeout(RESTORE_WAIT, self.restore(store.as_ref())).await;
        let done = matches!(first, Ok(Ok(())));
        if !done {
            let why = match first {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {}", humantime::format_duration(RESTORE_WAIT)),
            };
            tracing::warn!(error = %why, "cannot read the notification outbox yet; sending without it, merging it later");
            let (me, stop) = (self.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(RESTORE_RETRY) => {}
                    }
                    if me.restore(store.as_ref()).await.is_ok() {
                        tracing::info!("notification outbox read and merged");
                        return;
                    }
                }
            });
        }
        self.ready.store(true, Ordering::Release);
        self.ready_now.notify_waiters();
        for c in &self.channels {
            c.wake.notify_one();
        }
    }

    /// Incidents open before a restart come back from storage in a task of
    /// their own; the first leadership check below announces what is open
    /// (unless it was told already), so it waits for them, `RESTORE_WAIT` at most.
    async fn await_incidents(&self, stop: &CancellationToken) {
        let deadline = tokio::time::Instant::now() + RESTORE_WAIT;
        while !self.composer.incidents_restored() && tokio::time::Instant::now() < deadline {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(INCIDENTS_POLL) => {}
            }
        }
    }

    /// Merges stored deliveries: pending ones join their channel's queue,
    /// every key is remembered, and Alertmanager's firing alerts are rebuilt.
    async fn restore(&self, store: &dyn Store) -> crate::store::Result<()> {
        let since = self.clock.now().checked_sub(REMEMBER).unwrap_or(Timestamp::UNIX_EPOCH);
        let rows = store.deliveries_since(since).await?;
        let known: HashSet<&str> = self.channels.iter().map(|c| c.id.as_str()).collect();
        let resolved: HashSet<String> = rows
            .iter()
            .filter(|d| d.channel == "alertmanager" && d.key.ends_with(":resolved"))
            .filter_map(|d| d.key.strip_suffix(":resolved").map(str::to_string))
            .collect();
        let last_actions = last_actions(&rows);
        let mut book = lock(&self.book);
        for (incident, action) in last_actions {
            // What this process queued itself is newer than what storage kept.
            book.last_action.entry(incident).or_insert(action);
        }
        let (mut pending, mut dropped) = (0usize, 0usize);
        for d in rows {
            if book.seen.insert((d.key.clone(), d.channel.clone()), d.created_at).is_some() {
                continue;
            }
            match d.state {
                DeliveryState::Pending if known.contains(d.channel.as_str()) => {
                    pending += 1;
                    // Its age so far can only be read off the wall clock.
                    let age = Duration::try_from(self.clock.now().duration_since(d.created_at)).unwrap_or_default();
                    let mono_now = tokio::time::Instant::now();
                    let born = mono_now.checked_sub(age.min(outbox::MAX_AGE)).unwrap_or(mono_now);
                    book.born.insert((d.key.clone(), d.channel.clone()), born);
                    book.queues.entry(d.channel.clone()).or_default().push_back(d);
                }
                DeliveryState::Pending => {
                    dropped += 1;
                    let done = self.clock.now();
                    let why = "its channel is no longer configured".to_string();
                    self.writer.enqueue(Delivery {
                        state: DeliveryState::Abandoned,
                        last_error: Some(why),
                        done_at: Some(done),
                        ..d
                    });
                }
                DeliveryState::Delivered if d.channel == "alertmanager" => {
                    if let Ok(m) = serde_json::from_str::<Message>(&d.payload)
                        && !m.incident.is_empty()
                        && m.event != Event::IncidentResolved
                        && !resolved.contains(&m.incident)
                    {
                        let alert = Alert::from_message(&m);
                        book.firing.entry(m.incident.clone()).or_default().insert(alert_key(&alert), alert);
                    }
                }
                DeliveryState::Delivered | DeliveryState::Abandoned => {}
            }
        }
        for queue in book.queues.values_mut() {
            queue.make_contiguous().sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
        }
        drop(book);
        if pending + dropped > 0 {
            tracing::info!(pending, dropped, "notification outbox restored");
        }
        self.publish_queued();
        for c in &self.channels {
            c.wake.notify_one();
        }
        Ok(())
    }

    async fn take(&self, input: Input) {
        match input {
            Input::Opened(incident) => {
                let id = match self.announce(&incident).await {
                    Some(id) => {
                        self.adopt(&incident.id, &id);
                        id
                    }
                    None => self.announce_unclaimed(&incident),
                };
                // Queued under the announced id whoever announced it: the
                // shared send marker keeps it to one send.
                let mut m = self.composer.opened(&incident);
                m.incident = id.clone();
                self.enqueue(&format!("{id}:opened"), &m);
            }
            Input::Closed(incident) => {
                let ended_at = incident.ended_at.unwrap_or_else(|| self.clock.now());
                let (id, last, shared) = {
                    let mut book = lock(&self.book);
                    let id = book.alias.remove(&incident.id).unwrap_or_else(|| incident.id.clone());
                    let last = book.last_action.remove(&id);
                    let unclaimed = book.unclaimed.get_mut(&incident.id);
                    let shared = unclaimed.is_none();
                    if let Some(u) = unclaimed {
                        u.ended_at = Some(ended_at);
                    }
                    (id, last, shared)
                };
                let mut m = self.composer.resolved(&incident, last);
                m.incident = id.clone();
                self.enqueue(&format!("{id}:resolved"), &m);
                let Some(coord) = &self.coord else { return };
                match coord.release(&format!("incident:{}", incident.check), &id).await {
                    Err(e) => {
                        tracing::warn!(error = %e, incident = %id, "cannot release the incident's claim; it expires by itself");
                    }
                    // The claim is gone: this record is how a replica that queued the same
                    // breach under its own id (Redis down) finds out it was told as `id`.
                    Ok(_) if shared => {
                        let (started, ended) = (incident.started_at.as_millisecond(), ended_at.as_millisecond());
                        let key = episodes(&incident.check);
                        if let Err(e) = coord.record_episode(&key, &id, started, ended, CLAIM_FOR).await {
                            tracing::warn!(error = %e, incident = %id, "cannot record the closed incident in Redis");
                        }
                    }
                    Ok(_) => {}
                }
            }
            Input::Notice(notice) => {
                let mut m = self.composer.notice(&notice);
                if !m.incident.is_empty() {
                    let mut book = lock(&self.book);
                    if let Some(id) = book.alias.get(&m.incident) {
                        m.incident = id.clone();
                    }
                    if matches!(m.action, Action::Paused { .. } | Action::RolledBack { .. }) {
                        book.last_action.insert(m.incident.clone(), m.action.clone());
                    }
                }
                let subject = if m.incident.is_empty() { notice.target.as_str() } else { m.incident.as_str() };
                let key = format!("{subject}:{}:{}:{}", m.event.code(), m.action.code(), m.at.as_millisecond());
                self.enqueue(&key, &m);
            }
        }
    }

    /// The id this incident is announced under: its own, unless another
    /// replica announced the same check's incident first (Redis only).
    /// `None` when Redis cannot say.
    async fn announce(&self, incident: &Incident) -> Option<String> {
        let Some(coord) = &self.coord else { return Some(incident.id.clone()) };
        let unclaimed = lock(&self.book).unclaimed.get(&incident.id).cloned();
        let shared = match unclaimed {
            Some(u) => self.shared_id(coord, &incident.id, &u).await,
            None => coord.claim(&format!("incident:{}", incident.check), &incident.id, CLAIM_FOR).await,
        };
        match shared {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, incident = %incident.id, "cannot claim the incident in Redis; announcing it under its own id");
                None
            }
        }
    }

    /// Redis cannot say whose the incident is: it is queued under the id it
    /// was announced under before, else its own, until `reconcile` knows.
    fn announce_unclaimed(&self, incident: &Incident) -> String {
        let mut book = lock(&self.book);
        if let Some(id) = book.alias.get(&incident.id) {
            return id.clone();
        }
        let u = Unclaimed { check: incident.check.clone(), started_at: incident.started_at, ended_at: None };
        book.unclaimed.entry(incident.id.clone()).or_insert(u);
        incident.id.clone()
    }

    /// The shared id of an incident queued under its own id while Redis was
    /// down: that of an incident of the same check told meanwhile and closed
    /// since, if their times overlap (its claim is gone with it); else the
    /// check's claim, taken now if the incident is open here. One that closed
    /// here with neither is told as its own, and recorded as closed so that
    /// the other replicas' copies of it find it.
    async fn shared_id(&self, coord: &Coordinator, local: &str, u: &Unclaimed) -> crate::coord::Result<String> {
        let (key, started) = (episodes(&u.check), u.started_at.as_millisecond());
        let until = u.ended_at.unwrap_or_else(|| self.clock.now()).as_millisecond();
        if let Some(id) = coord.overlapping_episode(&key, started, until, None).await? {
            return Ok(id);
        }
        let claim = format!("incident:{}", u.check);
        if u.ended_at.is_none() {
            return coord.claim(&claim, local, CLAIM_FOR).await;
        }
        // Closed here while another replica's incident is still open: the same breach, seen ending sooner.
        if let Some(holder) = coord.get(&claim).await? {
            return Ok(holder);
        }
        let told = coord.overlapping_episode(&key, started, until, Some((local, CLAIM_FOR))).await?;
        Ok(told.unwrap_or_else(|| local.to_string()))
    }

    /// Matches every incident queued under its own id while Redis was down
    /// with its shared id, once Redis answers.
    async fn reconcile(&self) {
        let Some(coord) = self.coord.as_ref().filter(|c| c.health().last_error.is_none()) else { return };
        let unclaimed: Vec<(String, Unclaimed)> =
            lock(&self.book).unclaimed.iter().map(|(id, u)| (id.clone(), u.clone())).collect();
        for (local, u) in unclaimed {
            match self.shared_id(coord, &local, &u).await {
                Ok(shared) => self.adopt(&local, &shared),
                Err(e) => {
                    tracing::warn!(error = %e, incident = %local, "cannot match the incident with its shared id yet");
                    self.matching_fails.store(true, Ordering::Release);
                    return;
                }
            }
        }
        self.matching_fails.store(false, Ordering::Release);
    }

    /// Settles `local`'s shared id: what is still queued under `local` is
    /// queued under `shared` instead (or dropped, if it is already), so the
    /// shared send markers keep each message to one send across replicas.
    fn adopt(&self, local: &str, shared: &str) {
        let mut book = lock(&self.book);
        book.unclaimed.remove(local);
        if local == shared {
            return;
        }
        if book.alias.insert(local.to_string(), shared.to_string()).is_none() {
            tracing::info!(incident = %local, announced_as = %shared, "incident announced under another replica's id");
        }
        if let Some(action) = book.last_action.remove(local) {
            book.last_action.entry(shared.to_string()).or_insert(action);
        }
        let (prefix, now) = (format!("{local}:"), self.clock.now());
        let mut writes = Vec::new();
        let Book { queues, seen, born, .. } = &mut *book;
        for (channel, queue) in queues.iter_mut() {
            let mut kept = VecDeque::with_capacity(queue.len());
            for d in queue.drain(..) {
                let Some(rest) = d.key.strip_prefix(&prefix) else {
                    kept.push_back(d);
                    continue;
                };
                let key = format!("{shared}:{rest}");
                let old_born = born.remove(&(d.key.clone(), channel.clone()));
                let why = format!("superseded by {key}: the incident is told as {shared}");
                writes.push(Delivery {
                    state: DeliveryState::Abandoned,
                    done_at: Some(now),
                    last_error: Some(why),
                    ..d.clone()
                });
                if seen.contains_key(&(key.clone(), channel.clone())) {
                    continue;
                }
                seen.insert((key.clone(), channel.clone()), d.created_at);
                if let Some(b) = old_born {
                    born.insert((key.clone(), channel.clone()), b);
                }
                let payload = match serde_json::from_str::<Message>(&d.payload) {
                    Ok(mut m) => {
                        m.incident = shared.to_string();
                        serde_json::to_string(&m).unwrap_or_else(|_| d.payload.clone())
                    }
                    Err(_) => d.payload.clone(),
                };
                let moved = Delivery { key, payload, ..d };
                writes.push(moved.clone());
                kept.push_back(moved);
            }
            *queue = kept;
        }
        drop(book);
        for w in writes {
            self.writer.enqueue(w);
        }
        self.publish_queued();
        for c in &self.channels {
            c.wake.notify_one();
        }
    }

    fn enqueue(&self, key: &str, m: &Message) {
        let payload = match serde_json::to_string(m) {
            Ok(p) => p,
            Err(e) => return tracing::error!(error = %e, key, "cannot encode a notification"),
        };
        let now = self.clock.now();
        let mut book = lock(&self.book);
        for c in &self.channels {
            if book.seen.contains_key(&(key.to_string(), c.id.clone())) {
                continue;
            }
            book.seen.insert((key.to_string(), c.id.clone()), now);
            let d = Delivery {
                key: key.to_string(),
                channel: c.id.clone(),
                payload: payload.clone(),
                created_at: now,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                done_at: None,
            };
            self.writer.enqueue(d.clone());
            book.born.insert((key.to_string(), c.id.clone()), tokio::time::Instant::now());
            book.queues.entry(c.id.clone()).or_default().push_back(d);
            c.wake.notify_one();
        }
        drop(book);
        self.publish_queued();
    }

    /// Sends the channel's deliveries in order while this replica leads;
    /// the Alertmanager channel also re-sends firing alerts, in the same
    /// task, so a re-send never overtakes a resolve.
    async fn channel_loop(self: Arc<Self>, index: usize, stop: CancellationToken) {
        let Some(channel) = self.channels.get(index) else { return };
        let resends = matches!(channel.sender, Sender::Alertmanager(_));
        let mut next_resend = tokio::time::Instant::now() + self.resend_every;
        loop {
            let may_send = self.ready.load(Ordering::Acquire) && self.leadership.is_leader();
            let mut wait = if may_send { self.wait_for_work(channel) } else { FOLLOWER_POLL };
            if resends {
                wait = wait.min(next_resend.saturating_duration_since(tokio::time::Instant::now()));
            }
            if !wait.is_zero() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = channel.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            if resends && tokio::time::Instant::now() >= next_resend {
                next_resend = tokio::time::Instant::now() + self.resend_every;
                if may_send {
                    self.resend_firing(channel).await;
                }
                continue;
            }
            let Some(d) = self.due(channel) else { continue };
            let outcome = self.attempt(channel, &d).await;
            self.settle(channel, d, outcome);
        }
    }

    /// How long until the channel's oldest delivery is due: zero when it
    /// is, an hour when the queue is empty (an enqueue wakes the worker).
    fn wait_for_work(&self, channel: &Channel) -> Duration {
        let book = lock(&self.book);
        match book.queues.get(&channel.id).and_then(VecDeque::front) {
            Some(d) => until_due(d, self.clock.now()),
            None => Duration::from_secs(3600),
        }
    }

    /// The channel's oldest delivery if it is due: order is kept per channel.
    fn due(&self, channel: &Channel) -> Option<Delivery> {
        let book = lock(&self.book);
        let d = book.queues.get(&channel.id)?.front()?;
        until_due(d, self.clock.now()).is_zero().then(|| d.clone())
    }

    /// One attempt. With Redis, a send already made by any replica is not
    /// made again (`sent:`), and one under way elsewhere is waited for
    /// (`sending:`, short-lived, so a replica that died mid-send does not
    /// hold it up for long).
    async fn attempt(&self, channel: &Channel, d: &Delivery) -> Attempt {
        let born = lock(&self.book).born.get(&(d.key.clone(), channel.id.clone())).copied();
        let age = match born {
            Some(born) => born.elapsed(),
            None => Duration::try_from(self.clock.now().duration_since(d.created_at)).unwrap_or_default(),
        };
        if age >= outbox::MAX_AGE {
            return Attempt::TooOld;
        }
        let message = match serde_json::from_str::<Message>(&d.payload) {
            Ok(m) => m,
            Err(e) => {
                return Attempt::Failed { error: format!("stored notification is unreadable: {e}"), refused: true };
            }
        };
        let (sent, sending) = (format!("sent:{}:{}", channel.id, d.key), format!("sending:{}:{}", channel.id, d.key));
        // Skipped while Redis is known down: a send twice beats none, and every send waiting 2 s on it.
        let coord = self.coord.as_ref().filter(|c| c.health().last_error.is_none());
        {
            // Under the same lock as `adopt`: a delivery it moved is not sent under its old key.
            let book = lock(&self.book);
            if !book.queues.get(&channel.id).is_some_and(|q| q.iter().any(|q| q.key == d.key)) {
                return Attempt::Superseded;
            }
            let matching = coord.is_some() && !self.matching_fails.load(Ordering::Acquire);
            if matching && book.unclaimed.contains_key(&message.incident) {
                return Attempt::Unsettled;
            }
        }
        if let Some(coord) = coord {
            match coord.get(&sent).await {
                Ok(Some(holder)) => {
                    if let Sender::Alertmanager(_) = channel.sender {
                        self.track_firing(&message);
                    }
                    return Attempt::ElsewhereBy(holder);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, key = %d.key, "cannot ask Redis whether this was sent; sending"),
            }
            match coord.claim(&sending, &self.identity, SENDING_FOR).await {
                Ok(holder) if holder != self.identity => return Attempt::Busy(holder),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, key = %d.key, "cannot claim the send in Redis; sending"),
            }
        }
        let result = match &channel.sender {
            Sender::Alertmanager(client) => {
                let alerts = self.alerts_for(&message);
                client.send(&alerts).await.map_err(|e| (e.to_string(), refused_am(&e)))
            }
            Sender::Webhook(sender) => sender.send(&message).await.map_err(|e| (e.to_string(), refused_webhook(&e))),
        };
        if result.is_ok() {
            if let Sender::Alertmanager(_) = channel.sender {
                self.track_firing(&message);
            }
            if let Some(coord) = coord
                && let Err(e) = coord.put(&sent, &self.identity, CLAIM_FOR).await
            {
                tracing::warn!(error = %e, key = %d.key, "cannot mark the send in Redis; another replica may send it again");
            }
        }
        if let Some(coord) = coord
            && let Err(e) = coord.release(&sending, &self.identity).await
        {
            tracing::debug!(error = %e, "cannot release the send's claim; it expires by itself");
        }
        match result {
            Ok(()) => Attempt::Delivered,
            Err((error, refused)) => Attempt::Failed { error, refused },
        }
    }

    /// Records the attempt: delivered (or sent elsewhere) leaves the queue,
    /// a failure waits its back-off, an old or refused one is abandoned.
    fn settle(&self, channel: &Channel, mut d: Delivery, outcome: Attempt) {
        let now = self.clock.now();
        // Storage needs no word of a wait that lasts until the next match in Redis.
        let mut store = true;
        match outcome {
            Attempt::Delivered => {
                d.attempts = d.attempts.saturating_add(1);
                self.metrics.notify.sent(channel.label, true);
                tracing::info!(channel = %channel.id, key = %d.key, attempts = d.attempts, "notification delivered");
                (d.state, d.done_at, d.last_error) = (DeliveryState::Delivered, Some(now), None);
                self.audit(channel, &d, "ok", "delivered");
            }
            Attempt::ElsewhereBy(holder) => {
                tracing::info!(channel = %channel.id, key = %d.key, %holder, "notification already sent by another replica");
                (d.state, d.done_at) = (DeliveryState::Delivered, Some(now));
                d.last_error = Some(format!("sent by {holder}"));
            }
            Attempt::Busy(holder) => {
                tracing::debug!(channel = %channel.id, key = %d.key, %holder, "another replica is sending this; looking again soon");
                let wait = jiff::SignedDuration::try_from(BUSY_WAIT).unwrap_or(jiff::SignedDuration::ZERO);
                d.next_attempt_at = now.checked_add(wait).unwrap_or(now);
            }
            Attempt::Superseded => return,
            Attempt::Unsettled => {
                tracing::debug!(channel = %channel.id, key = %d.key, "the incident's shared id is not settled yet; looking again soon");
                let wait = jiff::SignedDuration::try_from(UNSETTLED_WAIT).unwrap_or(jiff::SignedDuration::ZERO);
                d.next_attempt_at = now.checked_add(wait).unwrap_or(now);
                store = false;
            }
            Attempt::TooOld => {
                let error = format!("not delivered within {}", humantime::format_duration(outbox::MAX_AGE));
                tracing::error!(channel = %channel.id, key = %d.key, attempts = d.attempts, "notification abandoned: {error}");
                (d.state, d.done_at) = (DeliveryState::Abandoned, Some(now));
                self.audit(channel, &d, "failed", &format!("abandoned: {error}"));
                d.last_error = Some(error);
            }
            Attempt::Failed { error, refused } => {
                d.attempts = d.attempts.saturating_add(1);
                self.metrics.notify.sent(channel.label, false);
                if refused && d.attempts >= outbox::MAX_REFUSALS {
                    tracing::error!(channel = %channel.id, key = %d.key, attempts = d.attempts, %error, "notification abandoned");
                    (d.state, d.done_at) = (DeliveryState::Abandoned, Some(now));
                    self.audit(channel, &d, "failed", &format!("abandoned after {} attempts: {error}", d.attempts));
                } else {
                    let wait = outbox::retry_wait(d.attempts, rand::random::<f64>());
                    tracing::warn!(channel = %channel.id, key = %d.key, attempts = d.attempts, retry_in = ?wait, %error, "notification not delivered; retrying");
                    let next = jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX);
                    d.next_attempt_at = now.checked_add(next).unwrap_or(now);
                }
                d.last_error = Some(error);
            }
        }
        {
            // Found by key, not position: a late outbox read may have re-sorted the queue.
            let mut book = lock(&self.book);
            if let Some(queue) = book.queues.get_mut(&channel.id)
                && let Some(at) = queue.iter().position(|q| q.key == d.key)
            {
                if d.state == DeliveryState::Pending {
                    if let Some(q) = queue.get_mut(at) {
                        *q = d.clone();
                    }
                } else {
                    queue.remove(at);
                }
            }
            if d.state != DeliveryState::Pending {
                book.born.remove(&(d.key.clone(), channel.id.clone()));
            }
        }
        if store {
            self.writer.enqueue(d);
        }
        self.publish_queued();
    }

    /// What Alertmanager gets for `m`: a resolve ends every alert its incident raised.
    fn alerts_for(&self, m: &Message) -> Vec<Alert> {
        let mut alert = Alert::from_message(m);
        if m.incident.is_empty() {
            let lasts = jiff::SignedDuration::try_from(LONE_ALERT_FOR).unwrap_or(jiff::SignedDuration::ZERO);
            alert.ends_at = m.at.checked_add(lasts).ok();
            return vec![alert];
        }
        if m.event != Event::IncidentResolved {
            return vec![alert];
        }
        let book = lock(&self.book);
        let others = book.firing.get(&m.incident).into_iter().flat_map(|f| f.values());
        let mut alerts: Vec<Alert> =
            others.filter(|a| alert_key(a) != alert_key(&alert)).map(|a| a.clone().resolved_at(m.at)).collect();
        alerts.push(alert);
        alerts
    }

    fn track_firing(&self, m: &Message) {
        if m.incident.is_empty() {
            return;
        }
        let mut book = lock(&self.book);
        if m.event == Event::IncidentResolved {
            book.firing.remove(&m.incident);
        } else {
            let alert = Alert::from_message(m);
            book.firing.entry(m.incident.clone()).or_default().insert(alert_key(&alert), alert);
        }
    }

    /// Re-sends every firing alert so Alertmanager does not resolve it by
    /// itself; alerts of incidents no longer open here are resolved.
    async fn resend_firing(&self, channel: &Channel) {
        let Sender::Alertmanager(client) = &channel.sender else { return };
        let alerts = self.still_firing();
        if alerts.is_empty() {
            return;
        }
        match client.send(&alerts).await {
            Ok(()) => {
                self.metrics.notify.sent(channel.label, true);
                tracing::debug!(alerts = alerts.len(), "firing alerts re-sent to Alertmanager");
            }
            Err(e) => {
                self.metrics.notify.sent(channel.label, false);
                tracing::warn!(error = %e, alerts = alerts.len(), "cannot re-send firing alerts; trying again at the next round");
            }
        }
    }

    /// Firing alerts to re-send; those of incidents that closed without a
    /// resolve here (closed while another replica led) are ended now.
    fn still_firing(&self) -> Vec<Alert> {
        let now = self.clock.now();
        let mut book = lock(&self.book);
        let open: HashSet<String> = self
            .composer
            .open_incident_ids()
            .into_iter()
            .map(|id| book.alias.get(&id).cloned().unwrap_or(id))
            .collect();
        let pending_resolves: HashSet<String> = book
            .queues
            .values()
            .flatten()
            .filter_map(|d| d.key.strip_suffix(":resolved").map(str::to_string))
            .collect();
        let mut alerts = Vec::new();
        let mut ended = Vec::new();
        for (incident, firing) in &book.firing {
            if pending_resolves.contains(incident) {
                // Its resolve is queued: sending it firing now could land after the resolve.
                continue;
            }
            if open.contains(incident) {
                alerts.extend(firing.values().cloned());
            } else {
                alerts.extend(firing.values().cloned().map(|a| a.resolved_at(now)));
                ended.push(incident.clone());
            }
        }
        for incident in ended {
            book.firing.remove(&incident);
        }
        alerts
    }

    fn audit(&self, channel: &Channel, d: &Delivery, outcome: &str, detail: &str) {
        let m = serde_json::from_str::<Message>(&d.payload).ok();
        let target = m.as_ref().and_then(|m| m.action.target().map(str::to_string)).unwrap_or_default();
        let summary = m.as_ref().map(Message::summary).unwrap_or_default();
        self.writer.enqueue(ActionRecord {
            id: format!("notify:{}:{}:{outcome}", channel.id, d.key),
            at: self.clock.now(),
            target,
            action: "notify".into(),
            outcome: outcome.into(),
            incident: m.map(|m| m.incident).filter(|i| !i.is_empty()),
            detail: format!("{} ({detail}): {summary}", channel.label),
        });
    }

    fn publish_queued(&self) {
        let book = lock(&self.book);
        let mut per_label: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &self.channels {
            *per_label.entry(c.label).or_default() += book.queues.get(&c.id).map_or(0, VecDeque::len);
        }
        drop(book);
        for (label, n) in per_label {
            self.metrics.notify.set_queued(label, n);
        }
    }
}

impl Channel {
    fn new(id: String, label: &'static str, sender: Sender) -> Self {
        Self { id, label, sender, wake: Notify::new() }
    }
}

impl Notifier for Courier {
    fn notify(&self, notice: Notice) {
        if self.has_channels() {
            let _ = self.inbox.send(Input::Notice(notice));
        }
    }
}

impl IncidentListener for Courier {
    fn opened(&self, incident: &Incident) {
        if self.has_channels() {
            let _ = self.inbox.send(Input::Opened(incident.clone()));
        }
    }

    fn closed(&self, incident: &Incident) {
        if self.has_channels() {
            let _ = self.inbox.send(Input::Closed(incident.clone()));
        }
    }
}

/// How long until `d` is due. No wait is ever longer than a retry's
/// back-off (`outbox::LONGEST_WAIT`): a due time further off than that was
/// set before the wall clock went back, and is due now.
fn until_due(d: &Delivery, now: Timestamp) -> Duration {
    let wait = Duration::try_from(d.next_attempt_at.duration_since(now)).unwrap_or(Duration::ZERO);
    if wait > outbox::LONGEST_WAIT { Duration::ZERO } else { wait }
}

/// The last pause or rollback told of each incident, from stored
/// deliveries: a resolve sent after a restart still says what Guardian did.
fn last_actions(rows: &[Delivery]) -> HashMap<String, Action> {
    let mut told: Vec<(Timestamp, Message)> = rows
        .iter()
        .filter_map(|d| Some((d.created_at, serde_json::from_str::<Message>(&d.payload).ok()?)))
        .filter(|(_, m)| m.event == Event::ActionTaken && !m.incident.is_empty())
        .filter(|(_, m)| matches!(m.action, Action::Paused { .. } | Action::RolledBack { .. }))
        .collect();
    told.sort_by_key(|(at, _)| *at);
    told.into_iter().map(|(_, m)| (m.incident, m.action)).collect()
}

/// The Redis key (a sorted set) of the incidents of `check` closed lately:
/// `{started ms} {id}` scored by when they closed.
fn episodes(check: &str) -> String {
    format!("episodes:{check}")
}

/// One alert per alertname and target within an incident.
fn alert_key(a: &Alert) -> (String, String) {
    let get = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
    (get("alertname"), get("target"))
}

/// A 4xx other than 408/425/429: the receiver will not take this body later either.
fn refused_status(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 425 | 429)
}

fn refused_am(e: &super::alertmanager::Error) -> bool {
    use super::alertmanager::{Error, Refusal};
    match e {
        Error::NoneAccepted(refusals) => {
            refusals.iter().all(|r| matches!(r, Refusal::Rejected { status, .. } if refused_status(*status)))
        }
        Error::Encode(_) => true,
        Error::NoAlertmanager | Error::NotABase { .. } | Error::Client(_) => false,
    }
}

fn refused_webhook(e: &WebhookError) -> bool {
    match e {
        WebhookError::Rejected { status, .. } => refused_status(*status),
        WebhookError::Encode { .. } => true,
        WebhookError::Client(_) | WebhookError::Unreachable { .. } => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lasting_client_error_is_a_refusal() {
        for (status, refused) in [(400, true), (404, true), (422, true), (408, false), (429, false), (500, false)] {
            assert_eq!(refused_status(status), refused, "{status}");
        }
    }
}
