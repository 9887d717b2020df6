#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `deploy/scripts/`, run for real: backups of a real PostgreSQL database
//! reported to a running guardian; the prod deploy and rollback refusing on
//! a wrong confirmation, a no-go and an unreachable guardian, going through on
//! go, and saying so when Guardian rolled the release back (the guardian in
//! Kubernetes mode on the fake API server); the staging deploy only in its
//! slot, validated by `guardian probe`. `kubectl` is `tests/scripts/kubectl`,
//! which records its calls.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use guardian::sim::{Fault, Simulator};
use serde_json::Value;
use support::eventually::eventually;
use support::guardian::Guardian;
use support::kube_guardian::{self, Replica};
use support::postgres::{TestDb, fresh_db};
use support::sim::Sim;

const SCRIPTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/scripts");
const CONFIRMATION: &str = "DEPLOY NEXTGEN PROD - €2.3M ARR CONFIRMED";
const TOKEN: &str = "deploy-scripts-token";
const SETTLE: Duration = Duration::from_secs(20);

/// What a script needs around it: a PATH with the kubectl stand-in and the
/// guardian binary, a backup directory, and the log of kubectl's calls.
struct Bench {
    dir: tempfile::TempDir,
    guardian_url: String,
    db: Option<String>,
    envs: Vec<(String, String)>,
}

impl Bench {
    fn new(guardian_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::create_dir(dir.path().join("backups")).unwrap();
        let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/kubectl");
        std::os::unix::fs::symlink(stub, dir.path().join("bin/kubectl")).unwrap();
        Self { dir, guardian_url: guardian_url.to_owned(), db: None, envs: Vec::new() }
    }

    fn with_db(mut self, db: &TestDb) -> Self {
        self.db = Some(db.url.clone());
        self
    }

    fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, script: &str, args: &[&str]) -> tokio::process::Command {
        let mut c = self.command_of(&Path::new(SCRIPTS).join(script));
        c.args(args);
        c
    }

    /// `script` at a terminal (util-linux `script` gives it one), typing `typed`.
    async fn run_typing(&self, script: &str, args: &str, typed: &str) -> Run {
        let line = format!("{} {args}", Path::new(SCRIPTS).join(script).display());
        let mut c = self.command_of(Path::new("script"));
        c.args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Typed once the prompt is up, as a person would.
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::io::AsyncWriteExt::write_all(&mut stdin, format!("{typed}\n").as_bytes()).await.unwrap();
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
        drop(stdin);
        Run::from(out)
    }

    fn command_of(&self, program: &Path) -> tokio::process::Command {
        let guardian_bin = Path::new(env!("CARGO_BIN_EXE_guardian")).parent().unwrap();
        let path = format!(
            "{}:{}:{}",
            self.path("bin").display(),
            guardian_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = tokio::process::Command::new(program);
        c.env("PATH", path)
            .env("KUBECTL_LOG", self.path("kubectl.log"))
            .env("GUARDIAN_URL", &self.guardian_url)
            .env("GUARDIAN_API_TOKEN", TOKEN)
            .env("BACKUP_DIR", self.path("backups"))
            .env("NEXTGEN_DATABASE", "nextgen_production")
            .env_remove("NEXTGEN_PROD_CONFIRMATION")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(url) = &self.db {
            c.env("NEXTGEN_DATABASE_URL", url);
        }
        c.envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    async fn run(&self, script: &str, args: &[&str]) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(90), self.command(script, args).output())
            .await
            .unwrap_or_else(|_| panic!("{script} did not end within 90 s"))
            .unwrap();
        Run::from(out)
    }

    /// kubectl's calls so far, one per line.
    fn kubectl_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("kubectl.log")).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    fn backups(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path("backups"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A stand-in nextgen_production, the simulator, a prod guardian waiting
/// for a backup, and a bench for the scripts pointed at both.
struct Prod {
    db: TestDb,
    sim: Sim,
    g: Guardian,
    bench: Bench,
}

impl Prod {
    async fn start() -> Option<Self> {
        let db = nextgen_db().await?;
        let sim = Sim::start().await;
        let g = prod_guardian(&sim.sim);
        waiting_for_a_backup(&g).await;
        let bench = Bench::new(&g.url("")).with_db(&db);
        Some(Self { db, sim, g, bench })
    }
}

/// A prod guardian in simulated mode guarding the three apps, probing the
/// simulator's payments, requiring a backup within the hour.
fn prod_guardian(sim: &Simulator) -> Guardian {
    let config = format!(
        r#"environment: prod
listen: "127.0.0.1:0"
storage: {{ url: "sqlite://guardian.db" }}
api: {{ token_env: GUARD_TOKEN }}
checks:
  - {{ name: payments-health, url: "http://{d}/api/payments/health", interval: 1s, budget: 3s, timeout: 6s }}
guard:
  mode: simulated
  targets:
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-landing }}
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard }}
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-admin }}
gate:
  stale_after: 10s
  require_backup_within: 1h
"#,
        d = sim.dashboard()
    );
    Guardian::start(&config, &[("GUARD_TOKEN", TOKEN)])
}

async fn gate(g: &Guardian, environment: &str) -> Value {
    let url = g.url(&format!("/api/v1/gate?environment={environment}"));
    get_json(&url).await
}

async fn get_json(url: &str) -> Value {
    serde_json::from_slice(&reqwest::get(url).await.unwrap().bytes().await.unwrap()).unwrap()
}

fn codes(gate: &Value) -> Vec<String> {
    gate["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_owned()).collect()
}

/// The guardian has probed and its only no-go reason is the missing backup.
async fn waiting_for_a_backup(g: &Guardian) {
    eventually(SETTLE, "the gate's only reason is backup_stale", || async {
        codes(&gate(g, "prod").await) == ["backup_stale"]
    })
    .await;
}

/// A database with a table of 3 customers, standing in for nextgen_production.
async fn nextgen_db() -> Option<TestDb> {
    let db = fresh_db().await?;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO customers (name) VALUES ('Alpha SARL'), ('Beta SAS'), ('Gamma SA');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    Some(db)
}

fn tool(name: &str) -> bool {
    match std::process::Command::new(name).arg("--version").output() {
        Ok(_) => true,
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{name} is required under CI=true: {e}");
            eprintln!("note: {name} not found ({e}); skipped");
            false
        }
    }
}

#[test]
fn every_script_is_strict_bash_and_shellcheck_clean() {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(SCRIPTS).unwrap().map(|e| e.unwrap().path()).collect();
    scripts.sort();
    let names: Vec<String> = scripts.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for want in [
        "backup-nextgen-prod.sh",
        "deploy-nextgen-prod.sh",
        "deploy-staging-shared.sh",
        "lib.sh",
        "rollback-nextgen-prod.sh",
        "test-staging-shared.sh",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} is missing from {names:?}");
    }
    for (path, name) in scripts.iter().zip(&names) {
        let text = std::fs::read_to_string(path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions());
        if name == "lib.sh" {
            assert!(text.starts_with("# shellcheck shell=bash"), "lib.sh is sourced, not run");
            continue;
        }
        assert!(text.starts_with("#!/usr/bin/env bash\n"), "{name}");
        assert!(text.contains("\nset -euo pipefail\n"), "{name} lacks set -euo pipefail");
        assert!(mode & 0o111 != 0, "{name} is not executable");
    }
    if !tool("shellcheck") {
        return;
    }
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/kubectl");
    let out = std::process::Command::new("shellcheck")
        .arg("-x")
        .args(&scripts)
        .arg(&stub)
        .current_dir(SCRIPTS)
        .output()
        .unwrap();
    assert!(out.status.success(), "shellcheck:\n{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn the_backup_is_dumped_verified_pruned_and_reported() {
    let Some(Prod { db: _db, sim: _sim, g, bench }) = Prod::start().await else { return };
    // Yesterday's dump stays; one of 20 days ago goes, with its checksum; other files are not ours to prune.
    let backups = bench.path("backups");
    for (name, age) in [
        ("nextgen_production-20261125T023000Z.dump", "1 day ago"),
        ("nextgen_production-20261106T023000Z.dump", "20 days ago"),
        ("nextgen_production-20261106T023000Z.dump.sha256", "20 days ago"),
        ("notes.txt", "20 days ago"),
    ] {
        std::fs::write(backups.join(name), "old").unwrap();
        let touched = std::process::Command::new("touch").args(["-d", age]).arg(backups.join(name)).status().unwrap();
        assert!(touched.success());
    }

    let run = bench.run("backup-nextgen-prod.sh", &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let file = PathBuf::from(run.stdout.trim());
    let id = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(id.starts_with("nextgen_production-") && id.ends_with("Z.dump"), "{id}");
    assert_eq!(
        bench.backups(),
        [
            id.clone(),
            format!("{id}.sha256"),
            "nextgen_production-20261125T023000Z.dump".to_owned(),
            "notes.txt".to_owned()
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    assert!(run.stderr.contains("pruned") && run.stderr.contains("20261106T023000Z.dump"), "{}", run.stderr);

    // The checksum verifies, and the dump restores into an empty database with every row.
    let check = std::process::Command::new("sha256sum")
        .args(["--check", &format!("{id}.sha256")])
        .current_dir(&backups)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let Some(restored) = fresh_db().await else { return };
    let restore = std::process::Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &restored.url])
        .arg(&file)
        .output()
        .unwrap();
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&restored.url).await.unwrap();
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM customers ORDER BY id").fetch_all(&mut conn).await.unwrap();
    assert_eq!(names, ["Alpha SARL", "Beta SAS", "Gamma SA"]);

    // Guardian recorded it: the gate no longer waits for a backup.
    let answer = gate(&g, "prod").await;
    assert_eq!(answer["decision"], "go", "{answer}");
}

#[tokio::test]
async fn a_failed_dump_reports_nothing_and_a_refused_report_keeps_the_dump() {
    let Some(db) = nextgen_db().await else { return };
    let sim = Sim::start().await;
    let g = prod_guardian(&sim.sim);
    waiting_for_a_backup(&g).await;

    let gone = Bench::new(&g.url("")).env("NEXTGEN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/no_such_db");
    let run = gone.run("backup-nextgen-prod.sh", &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("pg_dump of nextgen_production failed; nothing was reported"), "{}", run.stderr);
    assert!(gone.backups().is_empty(), "a failed dump leaves nothing: {:?}", gone.backups());
    assert_eq!(codes(&gate(&g, "prod").await), ["backup_stale"]);

    let refused = Bench::new(&g.url("")).with_db(&db).env("GUARDIAN_API_TOKEN", "not-the-token");
    let run = refused.run("backup-nextgen-prod.sh", &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("is on disk and verified, but Guardian"), "{}", run.stderr);
    assert_eq!(refused.backups().len(), 2, "the dump and its checksum stay: {:?}", refused.backups());
    assert_eq!(codes(&gate(&g, "prod").await), ["backup_stale"]);
}

#[tokio::test]
async fn the_prod_deploy_refuses_without_the_exact_confirmation() {
    let Some(db) = nextgen_db().await else { return };
    let sim = Sim::start().await;
    let g = prod_guardian(&sim.sim);
    let bench = Bench::new(&g.url("")).with_db(&db);
    for confirm in ["deploy nextgen prod - €2.3M ARR confirmed", "DEPLOY NEXTGEN PROD", ""] {
        let run = bench.run("deploy-nextgen-prod.sh", &["--image-tag", "1.8.2", "--confirm", confirm]).await;
        assert_eq!(run.code, 3, "{confirm:?}: {run:?}");
        assert!(run.stderr.contains("refused: the confirmation must be exactly"), "{}", run.stderr);
    }
    // Nothing happened: no backup, no kubectl.
    assert!(bench.backups().is_empty());
    assert!(bench.kubectl_calls().is_empty(), "{:?}", bench.kubectl_calls());
    let rollback = bench.run("rollback-nextgen-prod.sh", &["--confirm", "yes"]).await;
    assert_eq!(rollback.code, 3, "{rollback:?}");
    assert!(bench.kubectl_calls().is_empty());
    if !tool("script") {
        return;
    }
    // Typed at a terminal: the prompt names the phrase; a near miss is refused, the phrase is taken.
    let typed = bench.run_typing("deploy-nextgen-prod.sh", "--image-tag 1.8.2", "DEPLOY NEXTGEN PROD").await;
    assert_eq!(typed.code, 3, "{typed:?}");
    assert!(typed.stdout.contains(&format!("Type exactly: {CONFIRMATION}")), "{typed:?}");
    assert!(typed.stdout.contains("refused: the confirmation must be exactly"), "{typed:?}");
    let closed = Bench::new("http://127.0.0.1:1").with_db(&db);
    let typed = closed.run_typing("deploy-nextgen-prod.sh", "--image-tag 1.8.2", CONFIRMATION).await;
    assert_eq!(typed.code, 3, "{typed:?}");
    assert!(typed.stdout.contains("confirmed") && typed.stdout.contains("does not answer"), "{typed:?}");
    assert!(bench.kubectl_calls().is_empty() && closed.kubectl_calls().is_empty());
}

#[tokio::test]
async fn the_prod_deploy_refuses_on_no_go_and_when_guardian_is_unreachable() {
    let Some(db) = nextgen_db().await else { return };
    let sim = Sim::start().await;
    let g = prod_guardian(&sim.sim);
    waiting_for_a_backup(&g).await;
    sim.sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    eventually(SETTLE, "payments fail the gate", || async {
        codes(&gate(&g, "prod").await).contains(&"check_failing".to_owned())
    })
    .await;

    let bench = Bench::new(&g.url("")).with_db(&db);
    let run = bench.run("deploy-nextgen-prod.sh", &["--image-tag", "1.8.2", "--confirm", CONFIRMATION]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("- check_failing: ") && run.stderr.contains("gate for prod says no-go"),
        "{}",
        run.stderr
    );
    assert!(bench.kubectl_calls().is_empty(), "{:?}", bench.kubectl_calls());
    assert_eq!(bench.backups().len(), 2, "the backup came first: {:?}", bench.backups());

    let closed = Bench::new("http://127.0.0.1:1").with_db(&db);
    for (script, args) in [
        ("deploy-nextgen-prod.sh", &["--image-tag", "1.8.2", "--confirm", CONFIRMATION][..]),
        ("rollback-nextgen-prod.sh", &["--confirm", CONFIRMATION][..]),
    ] {
        let run = closed.run(script, args).await;
        assert_eq!(run.code, 3, "{script}: {run:?}");
        assert!(run.stderr.contains("does not answer") && run.stderr.contains("fail closed"), "{}", run.stderr);
    }
    assert!(closed.kubectl_calls().is_empty() && closed.backups().is_empty());
}

#[tokio::test]
async fn the_prod_deploy_goes_through_on_go_guarded_by_a_migration() {
    let Some(db) = nextgen_db().await else { return };
    let sim = Sim::start().await;
    let g = prod_guardian(&sim.sim);
    waiting_for_a_backup(&g).await;
    let armed = format!("curl -s {} | jq -c '[.targets[] | select(.armed) | .target]'", g.url("/api/v1/status"));
    let bench = Bench::new(&g.url("")).with_db(&db).env("KUBECTL_DURING_ROLLOUT", &armed);
    let run = bench
        .run(
            "deploy-nextgen-prod.sh",
            &["--image-tag", "1.8.2", "--apps", "dashboard,admin", "--bake-seconds", "1", "--confirm", CONFIRMATION],
        )
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let ns = "-n blueocean-nextgen-prod";
    let r = "registry.digitalocean.com/blueocean";
    // While kubectl waited, Guardian guarded both apps (and only them).
    let guarded = r#"during rollout: ["blueocean-nextgen-prod/Deployment/nextgen-admin","blueocean-nextgen-prod/Deployment/nextgen-dashboard"]"#;
    assert_eq!(
        bench.kubectl_calls(),
        [
            format!("{ns} set image deployment/nextgen-dashboard nextgen-dashboard={r}/nextgen-dashboard:1.8.2"),
            format!("{ns} set image deployment/nextgen-admin nextgen-admin={r}/nextgen-admin:1.8.2"),
            format!("{ns} rollout status deployment/nextgen-dashboard --timeout=10m"),
            guarded.to_owned(),
            format!("{ns} rollout status deployment/nextgen-admin --timeout=10m"),
            guarded.to_owned(),
        ]
    );
    assert!(run.stderr.contains("Guardian saw no breach"), "{}", run.stderr);
    // The migrations were finished: nothing is armed any more.
    let status = get_json(&g.url("/api/v1/status")).await;
    for t in status["targets"].as_array().unwrap() {
        assert_eq!((t["armed"].clone(), t["migrations"].as_array().unwrap().len()), (Value::Bool(false), 0), "{t}");
    }
}

#[tokio::test]
async fn the_prod_deploy_says_so_when_guardian_rolled_the_release_back() {
    let Some(db) = nextgen_db().await else { return };
    let cluster = kube_guardian::Cluster::start().await;
    cluster.seed_deployment();
    let g = cluster.guardian(&Replica::named("guardian-0"));
    kube_guardian::ready(&g).await;

    let bench = Bench::new(&g.url("")).with_db(&db).env("GUARDIAN_API_TOKEN", kube_guardian::TOKEN);
    let (set_image, release) = (bench.path("set-image"), bench.path("release"));
    let mut deploy = bench
        .command(
            "deploy-nextgen-prod.sh",
            &["--image-tag", "1.8.2", "--apps", "dashboard", "--bake-seconds", "1", "--confirm", CONFIRMATION],
        )
        .env("KUBECTL_SET_IMAGE_MARK", &set_image)
        .env("KUBECTL_WAIT_FOR", &release)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // What `kubectl set image` starts in the cluster; then 1.8.2 breaks payments.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !set_image.exists() {
        if deploy.try_wait().unwrap().is_some() || tokio::time::Instant::now() > deadline {
            let _ = deploy.start_kill();
            let out = deploy.wait_with_output().await.unwrap();
            panic!("the script did not set the image: {:?}", Run::from(out));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.roll_out();
    cluster.break_payments();
    eventually(Duration::from_secs(30), "Guardian rolls back", || async { !cluster.rollbacks().is_empty() }).await;
    // `kubectl rollout status` then ends well: the rollback itself rolled out.
    std::fs::write(&release, "").unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), deploy.wait_with_output()).await.unwrap().unwrap();
    let run = Run::from(out);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("Guardian ROLLED BACK 1.8.2"), "{}", run.stderr);
    assert!(run.stderr.contains("blueocean-nextgen-prod/Deployment/nextgen-dashboard"), "{}", run.stderr);
    assert_eq!(cluster.rollbacks().len(), 1);
}

#[tokio::test]
async fn the_manual_rollback_undoes_unless_guardian_already_did() {
    let Some(Prod { db: _db, sim: _sim, g: _g, bench }) = Prod::start().await else { return };
    let deployment = bench.path("deployment.json");
    let bench = bench.env("KUBECTL_GET_JSON", deployment.to_str().unwrap());

    // Guardian rolled nextgen-dashboard back from 2 (now at 3): an undo would bring 2 back.
    std::fs::write(
        &deployment,
        r#"{"metadata":{"annotations":{"deployment.kubernetes.io/revision":"3","guardian.blueocean.io/rolled-back-from":"2"}}}"#,
    )
    .unwrap();
    let run = bench.run("rollback-nextgen-prod.sh", &["--apps", "dashboard", "--confirm", CONFIRMATION]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("Guardian already rolled nextgen-dashboard back from revision 2"), "{}", run.stderr);
    assert!(!bench.kubectl_calls().iter().any(|c| c.contains("undo")), "{:?}", bench.kubectl_calls());

    // A release Guardian did not touch: undone, after a backup.
    std::fs::write(&deployment, r#"{"metadata":{"annotations":{"deployment.kubernetes.io/revision":"2"}}}"#).unwrap();
    let run = bench.run("rollback-nextgen-prod.sh", &["--apps", "dashboard", "--confirm", CONFIRMATION]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let calls = bench.kubectl_calls();
    let ns = "-n blueocean-nextgen-prod";
    assert_eq!(
        calls[calls.len() - 3..],
        [
            format!("{ns} get deployment/nextgen-dashboard -o json"),
            format!("{ns} rollout undo deployment/nextgen-dashboard"),
            format!("{ns} rollout status deployment/nextgen-dashboard --timeout=10m"),
        ]
    );
    assert!(run.stderr.contains("backup before the rollback"), "{}", run.stderr);
    // --to-revision names one app's revision.
    let run = bench.run("rollback-nextgen-prod.sh", &["--to-revision", "1", "--confirm", CONFIRMATION]).await;
    assert_eq!(run.code, 2, "{run:?}");
}

/// A staging guardian whose slot is `start`–`end` in a zone where it is now about noon.
fn staging_guardian(sim: &Simulator, start: &str, end: &str) -> Guardian {
    let hour = i32::try_from(jiff::Timestamp::now().as_second().rem_euclid(86_400) / 3_600).unwrap();
    let offset = 12 - hour; // local = UTC + offset ≈ 12:xx
    let zone = match offset {
        0 => "Etc/GMT".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"), // POSIX sign: Etc/GMT-2 is UTC+2
        o => format!("Etc/GMT+{}", -o),
    };
    let config = format!(
        r#"environment: staging-shared
listen: "127.0.0.1:0"
storage: {{ url: "sqlite://guardian.db" }}
api: {{ token_env: GUARD_TOKEN }}
checks:
  - {{ name: payments-health, url: "http://{d}/api/payments/health", interval: 1s, budget: 3s, timeout: 6s }}
gate:
  stale_after: 10s
  windows:
    - name: staging-shared-slot
      environments: [staging-shared]
      timezone: {zone}
      days: [mon, tue, wed, thu, fri, sat, sun]
      start: "{start}"
      end: "{end}"
"#,
        d = sim.dashboard()
    );
    Guardian::start(&config, &[("GUARD_TOKEN", TOKEN)])
}

/// The overlay's own validation config, its host swapped for the simulator's servers (as the Ingress routes).
fn validation_config(sim: &Simulator, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/overlays/staging-shared/validation.yaml"),
    )
    .unwrap();
    let host = "http://nextgen.staging-shared.local";
    let text = text
        .replace(&format!("{host}/api/admin"), &format!("http://{}/api/admin", sim.admin()))
        .replace(&format!("\"{host}/\""), &format!("\"http://{}/\"", sim.landing()))
        .replace(host, &format!("http://{}", sim.dashboard()))
        .replace("sqlite:///tmp/guardian.db", &format!("sqlite://{}/v.db", dir.display()));
    let path = dir.join("validation.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn the_staging_deploy_runs_only_in_its_slot_and_validates_the_business() {
    let sim = Sim::start().await;
    let outside = staging_guardian(&sim.sim, "14:00", "15:00");
    let inside = staging_guardian(&sim.sim, "10:00", "14:00");
    for g in [&outside, &inside] {
        eventually(SETTLE, "the staging gate has a result", || async {
            !codes(&gate(g, "staging-shared").await).contains(&"data_stale".to_owned())
        })
        .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let validation = validation_config(&sim.sim, dir.path());
    let validation = validation.to_str().unwrap();

    let bench = Bench::new(&outside.url("")).env("STAGING_VALIDATION_CONFIG", validation);
    let run = bench.run("deploy-staging-shared.sh", &["nextgen", "--image-tag", "1.8.2"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("- outside_window: "), "{}", run.stderr);
    assert!(bench.kubectl_calls().is_empty(), "{:?}", bench.kubectl_calls());

    let bench = Bench::new(&inside.url("")).env("STAGING_VALIDATION_CONFIG", validation);
    let run = bench.run("deploy-staging-shared.sh", &["nextgen", "--image-tag", "1.8.2"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let overlay = Path::new(SCRIPTS).join("../kubernetes/overlays/staging-shared");
    let ns = "-n blueocean-staging-shared";
    let r = "registry.digitalocean.com/blueocean";
    assert_eq!(
        bench.kubectl_calls(),
        [
            format!("apply -k {}", overlay.display()),
            format!("{ns} set image deployment/nextgen-landing nextgen-landing={r}/nextgen-landing:1.8.2"),
            format!("{ns} set image deployment/nextgen-dashboard nextgen-dashboard={r}/nextgen-dashboard:1.8.2"),
            format!("{ns} set image deployment/nextgen-admin nextgen-admin={r}/nextgen-admin:1.8.2"),
            format!("{ns} rollout status deployment/nextgen-landing --timeout=10m"),
            format!("{ns} rollout status deployment/nextgen-dashboard --timeout=10m"),
            format!("{ns} rollout status deployment/nextgen-admin --timeout=10m"),
        ]
    );
    assert!(run.stdout.contains("domains-portfolio") && run.stderr.contains("business validation passed"), "{run:?}");

    // The portfolio lost domains: the validation, and so the deploy, fails.
    sim.sim
        .faults()
        .set(Fault { json: Some(serde_json::json!({ "total": 229 })), ..Fault::on("/api/domains/portfolio/status") });
    let run = bench.run("test-staging-shared.sh", &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("business validation FAILED"), "{}", run.stderr);
    let run = bench.run("deploy-staging-shared.sh", &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("the business validation failed: do not promote"), "{}", run.stderr);
}
