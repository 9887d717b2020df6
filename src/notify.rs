//! Owns telling people what the guard saw and did. `Message` and `render`
//! are the words and the webhook bodies (Slack, Teams, generic) that the
//! notifiers of the next release send. `Notifier` is the seam;
//! `LogNotifier` writes each notice as a structured warning and records it
//! in the audit log (channel `log`). Sending is never awaited by an action:
//! `notify` only hands the notice over.

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;

use crate::audit::ActionRecord;
use crate::store::StoreWriter;

mod alertmanager;
mod format;
mod message;
mod webhook;

pub use alertmanager::{Alert, AlertmanagerClient, Error as AlertmanagerError, Refusal};
pub use format::render;
pub use message::{Action, Event, GateState, Message, Statistic, format_eur};
pub use webhook::{WebhookError, WebhookSender};

/// One thing people must hear about a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub at: Timestamp,
    pub target: String,
    pub check: String,
    pub incident: Option<String>,
    /// One line: what happened and what Guardian did.
    pub summary: String,
}

pub trait Notifier: Send + Sync + 'static {
    /// Hands the notice over; never blocks.
    fn notify(&self, notice: Notice);
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
