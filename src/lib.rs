//! Guardian keeps NEXTGEN safe while it changes. Map of the crate:
//!
//! - `cli`      — clap types and one file per subcommand (`run`, `check-config`, `probe`, `demo`, `sim`).
//! - `cluster`  — the `Cluster` trait (rollout state, watch, pause, roll back), in-memory and kube-rs backends.
//! - `config`   — YAML loading with line:col, validation into a typed `Config`, defaults.
//! - `probe`    — the probe engine: scheduler, HTTP prober, body assertions, outcomes, the check board.
//! - `app`      — builds a running guardian from a `Config` (the one place that picks backends).
//! - `api`      — the HTTP API (`/healthz`, `/readyz`, `/metrics`, `/api/v1/status`).
//! - `metrics`  — the Prometheus registry and every metric of SPEC.
//! - `slo`      — per-minute roll-ups, SLIs, error budgets, burn rates.
//! - `gatekeeper` — answers the gate at run time from in-memory state; records answer changes.
//! - `guard`    — the rollout guard's pure decisions: rolling-out rule, evidence, what to do, rollback plan.
//! - `targets`, `evidence`, `actuator` — the guard at run time: arming, triggers, acting once.
//! - `leader`   — who may act among replicas: the `Leadership` trait, `Solo`, the Lease elector, the Redis lock.
//! - `coord`    — Redis coordination between replicas: claims, health, the key prefix.
//! - `notify`   — notifications: messages, webhook bodies, Alertmanager and webhook senders, the outbox courier.
//! - `history`  — SLO and incident trackers fed by probes, persisted through the store queue.
//! - `incident` — confirmed breaches of a check and what they put at risk.
//! - `gate`     — the go/no-go decision, deploy windows, backups.
//! - `store`    — persistence (SQLite or PostgreSQL through sqlx) behind the `Store` trait.
//! - `audit`, `migration` — the action audit log and declared migrations.
//! - `sim`      — the NEXTGEN business API simulator (`guardian sim`, demo, tests, benches).
//! - `units`    — parsing durations (`250ms`) and sizes (`1MiB`) as SPEC writes them.
//! - `telemetry`, `clock`, `shutdown` — logging and OpenTelemetry tracing, wall time, stop signals.

pub mod actuator;
pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod coord;
pub mod evidence;
pub mod gate;
pub mod gatekeeper;
pub mod guard;
pub mod history;
pub mod incident;
pub mod leader;
pub mod metrics;
pub mod migration;
pub mod notify;
pub mod probe;
pub mod shutdown;
pub mod sim;
pub mod slo;
pub mod store;
pub mod targets;
pub mod telemetry;
pub mod units;
