//! Helpers shared by the integration tests. Each test binary uses only some of them.
#![allow(dead_code)]
// Test set-up panics on failure by design; `guardian.rs` waits on a child process from a plain thread.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

pub mod alertmanager;
pub mod bad_input;
pub mod dashboards;
pub mod eventually;
pub mod exported;
pub mod fake_apiserver;
pub mod guardian;
pub mod hostile;
pub mod in_process;
pub mod jump_clock;
pub mod kube_guardian;
pub mod messages;
pub mod otlp;
pub mod outage;
pub mod pg_private;
pub mod postgres;
pub mod promtext;
pub mod recorder;
pub mod redis;
pub mod redis_private;
pub mod replica;
pub mod rss;
pub mod sim;
pub mod targets;
pub mod tools;
