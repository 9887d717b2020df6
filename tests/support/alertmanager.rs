//! A real Alertmanager (Debian's `prometheus-alertmanager`) on a loopback
//! port for a test, with the config it is given, killed when dropped.
//! Without `alertmanager` on PATH, `start` returns `None` after a note,
//! except under `CI=true`, where the test fails.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::eventually::eventually;

pub struct RealAlertmanager {
    child: Child,
    pub base: Url,
    pub dir: tempfile::TempDir,
}

impl RealAlertmanager {
    /// Started and ready, or `None` when `alertmanager` is not installed (outside CI).
    pub async fn start(config: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("am.yml");
        std::fs::write(&path, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.path().join("am.log")).unwrap();
        let spawned = Command::new("alertmanager")
            .arg(format!("--config.file={}", path.display()))
            .arg(format!("--storage.path={}", dir.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "alertmanager is not on PATH, and CI=true requires it"
                );
                eprintln!("alertmanager not on PATH (Debian package prometheus-alertmanager): skipped");
                return None;
            }
            Err(e) => panic!("cannot start alertmanager: {e}"),
        };
        let am = Self { child, base: Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(), dir };
        eventually(Duration::from_secs(20), "alertmanager is ready", || async {
            matches!(am.get("-/ready").await, Some((StatusCode::OK, _)))
        })
        .await;
        Some(am)
    }

    /// What Alertmanager logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default()
    }

    pub async fn get(&self, path_and_query: &str) -> Option<(StatusCode, String)> {
        let r = reqwest::get(self.base.join(path_and_query).unwrap()).await.ok()?;
        Some((r.status(), r.text().await.ok()?))
    }

    /// Alerts of one incident as Alertmanager lists them (`GET /api/v2/alerts`, active by default).
    pub async fn alerts(&self, incident: &str) -> Vec<Value> {
        let Some((StatusCode::OK, text)) = self.get("api/v2/alerts").await else { panic!("GET /api/v2/alerts failed") };
        let all: Vec<Value> = serde_json::from_str(&text).unwrap();
        all.into_iter().filter(|a| a["labels"]["incident"] == incident).collect()
    }
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
