//! Notification and coordination metrics: deliveries by channel and
//! outcome, what waits in the outbox, and whether Redis answers.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus::{Gauge, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::config::Config;

pub struct NotifyMetrics {
    sent: IntCounterVec,
    queued: IntGaugeVec,
    redis_up: Gauge,
    /// Whether each channel's last attempt failed, for `/readyz`'s note.
    last_failed: Mutex<BTreeMap<String, bool>>,
}

impl NotifyMetrics {
    pub fn register(registry: &Registry, config: &Config) -> Result<Self, prometheus::Error> {
        let m = Self {
            sent: IntCounterVec::new(
                Opts::new(
                    "guardian_notifications_total",
                    "Notification attempts by channel (alertmanager, slack, teams, generic) and outcome",
                ),
                &["channel", "outcome"],
            )?,
            queued: IntGaugeVec::new(
                Opts::new("guardian_notifications_queued", "Notifications waiting in the outbox, by channel"),
                &["channel"],
            )?,
            redis_up: Gauge::with_opts(Opts::new(
                "guardian_redis_up",
                "1 while Redis answers (coordination between replicas); 0 when it does not or is not configured",
            ))?,
            last_failed: Mutex::new(BTreeMap::new()),
        };
        registry.register(Box::new(m.sent.clone()))?;
        registry.register(Box::new(m.queued.clone()))?;
        registry.register(Box::new(m.redis_up.clone()))?;
        let mut channels: Vec<&str> = config.notify.webhooks.iter().map(|w| format_label(w.format)).collect();
        if !config.notify.alertmanager.is_empty() {
            channels.push("alertmanager");
        }
        for channel in channels {
            for outcome in ["ok", "failed"] {
                m.sent.with_label_values(&[channel, outcome]);
            }
            m.queued.with_label_values(&[channel]);
        }
        Ok(m)
    }

    pub fn sent(&self, channel: &str, ok: bool) {
        self.sent.with_label_values(&[channel, if ok { "ok" } else { "failed" }]).inc();
        self.last_failed.lock().unwrap_or_else(|p| p.into_inner()).insert(channel.to_string(), !ok);
    }

    /// Channels whose messages wait because their last attempt failed, with
    /// how many wait: a receiver is down. Messages merely queued behind a
    /// working receiver are not news.
    pub fn failing(&self) -> Vec<(String, i64)> {
        let last_failed = self.last_failed.lock().unwrap_or_else(|p| p.into_inner());
        last_failed
            .iter()
            .filter(|(_, failed)| **failed)
            .map(|(channel, _)| (channel.clone(), self.queued.with_label_values(&[channel]).get()))
            .filter(|(_, waiting)| *waiting > 0)
            .collect()
    }

    pub fn set_queued(&self, channel: &str, queued: usize) {
        self.queued.with_label_values(&[channel]).set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    pub fn set_redis_up(&self, up: bool) {
        self.redis_up.set(if up { 1.0 } else { 0.0 });
    }
}

/// The `channel` label of a webhook: its format.
pub fn format_label(format: crate::config::WebhookFormat) -> &'static str {
    match format {
        crate::config::WebhookFormat::Slack => "slack",
        crate::config::WebhookFormat::Teams => "teams",
        crate::config::WebhookFormat::Generic => "generic",
    }
}
