//! Owns telling people what the guard saw and did. `Message` is the words
//! (`message.rs`), built from incidents and the guard's notices by
//! `Composer` (`compose.rs`) and rendered for Slack, Teams or a generic
//! receiver by `render` (`format.rs`); `AlertmanagerClient` and
//! `WebhookSender` post them; the `Courier` (`courier.rs`) delivers each one
//! once per channel through the outbox (`outbox.rs`). `Notifier` is the seam
//! the guard calls: handing a notice over never blocks, so no action waits
//! on a receiver. `LogNotifier` writes each notice as a structured warning
//! and an audit row (channel `log`).

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::audit::ActionRecord;
use crate::store::StoreWriter;

mod alertmanager;
mod compose;
mod courier;
mod format;
mod message;
mod outbox;
mod webhook;

pub use alertmanager::{Alert, AlertmanagerClient, Error as AlertmanagerError, Refusal};
pub use compose::Composer;
pub use courier::{BuildError as CourierError, Courier, Parts as CourierParts};
pub use format::render;
pub use message::{Action, Event, GateState, Message, Statistic, format_eur};
pub use outbox::{Delivery, DeliveryState};
pub use webhook::{WebhookError, WebhookSender};

/// One thing people must hear about a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub at: Timestamp,
    pub target: String,
    pub check: String,
    pub incident: Option<String>,
    /// What the probes showed, in words.
    pub reason: String,
    pub did: Did,
    /// One line: what happened and what Guardian did.
    pub summary: String,
}

/// What Guardian did about the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Did {
    Paused {
        revision: Option<u64>,
    },
    /// `after_pause`: the pause went first, in the same decision.
    RolledBack {
        from: u64,
        to: u64,
        after_pause: bool,
    },
    /// Decided to leave it as it is (not armed, rolled back already, a dry
    /// run…), and why.
    LeftAlone {
        why: String,
    },
    /// Tried and could not.
    Failed {
        why: String,
    },
}

pub trait Notifier: Send + Sync + 'static {
    /// Hands the notice over; never blocks.
    fn notify(&self, notice: Notice);
}

/// Hands each notice to every notifier in turn.
pub struct Notifiers(pub Vec<Arc<dyn Notifier>>);

impl Notifier for Notifiers {
    fn notify(&self, notice: Notice) {
        for n in &self.0 {
            n.notify(notice.clone());
        }
    }
}

/// Logs notices and records them in the audit log.
pub struct LogNotifier {
    writer: StoreWriter,
}

impl LogNotifier {
    pub fn new(writer: StoreWriter) -> Arc<Self> {
        Arc::new(Self { writer })
    }
}

impl Notifier for LogNotifier {
    fn notify(&self, n: Notice) {
        tracing::warn!(target_ref = %n.target, check = %n.check, incident = ?n.incident, "NOTICE: {}", n.summary);
        self.writer.enqueue(ActionRecord {
            id: format!("notify:{}:{}:{}", n.target, n.check, n.at.as_millisecond()),
            at: n.at,
            target: n.target,
            action: "notify".into(),
            outcome: "ok".into(),
            incident: n.incident,
            detail: format!("log: {}", n.summary),
        });
    }
}
