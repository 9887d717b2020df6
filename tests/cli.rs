//! The commands as a person runs them: `probe` prints its table and exit
//! codes, `sim` serves until SIGTERM, and `demo` plays its story.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

use guardian::sim::{Fault, Simulator};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_guardian");

/// examples/nextgen.yaml pointed at this simulator, written to a temp dir.
fn example_config(sim: &Simulator, dir: &tempfile::TempDir) -> std::path::PathBuf {
    let text = std::fs::read_to_string("examples/nextgen.yaml")
        .unwrap()
        .replace("127.0.0.1:7000", &sim.landing().to_string())
        .replace("127.0.0.1:7001", &sim.dashboard().to_string())
        .replace("127.0.0.1:7002", &sim.admin().to_string());
    let path = dir.path().join("nextgen.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn probe(args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || Command::new(BIN).arg("probe").args(&args).output().unwrap())
        .await
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn probe_prints_a_table_and_exits_0_when_every_check_is_good() {
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], CancellationToken::new()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(&sim, &dir);
    let (code, stdout, stderr) = probe(&["-c", config.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("CHECK") && lines[0].contains("LATENCY") && lines[0].contains("VERDICT"));
    assert_eq!(lines.len(), 12, "a header and 11 checks:\n{stdout}");
    let revenue = lines.iter().find(|l| l.starts_with("revenue-status")).unwrap();
    assert!(revenue.contains(" 200 ") && revenue.contains("500ms") && revenue.contains("OK"), "{revenue}");
}

#[tokio::test]
async fn probe_exits_1_and_says_why_when_a_check_is_bad() {
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], CancellationToken::new()).await.unwrap();
    sim.faults().set(Fault { status: Some(503), ..Fault::on("/api/payments/health") });
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(&sim, &dir);
    let (code, stdout, _) =
        probe(&["-c", config.to_str().unwrap(), "--check", "payments-health", "--check", "revenue-status"]).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 3, "only the chosen checks:\n{stdout}");
    let payments = stdout.lines().find(|l| l.starts_with("payments-health")).unwrap();
    assert!(payments.contains("FAILED") && payments.contains("status 503, expected 200"), "{payments}");
}

#[tokio::test]
async fn probe_exits_2_on_an_unknown_check_or_a_bad_config() {
    let (code, _, stderr) = probe(&["-c", "examples/nextgen.yaml", "--check", "paymnts"]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains(r#"no check named "paymnts" in examples/nextgen.yaml"#), "{stderr}");
    let (code, _, stderr) = probe(&["-c", "tests/configs/invalid-empty-checks.yaml"]).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("invalid-empty-checks.yaml:2:9: checks: empty"), "{stderr}");
}

#[test]
fn sim_serves_on_the_ports_it_prints_and_exits_0_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["sim", "--ports", "0,0,0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().take(3).map(Result::unwrap).collect();
    assert!(lines[0].starts_with("landing listening on 127.0.0.1:"), "{lines:?}");
    let dashboard = lines[1].strip_prefix("dashboard listening on ").unwrap();
    let mut stream = std::net::TcpStream::connect(dashboard).unwrap();
    write!(stream, "GET /api/domains/count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with(r#"{"count":230}"#), "{answer}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn demo_plays_the_bad_rollout_story_and_exits_0() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let events: Vec<&str> = stdout.lines().filter_map(|l| l.split_once(">>> ").map(|(_, e)| e)).collect();
    let expected = [
        "gate: GO",
        "deploying nextgen-dashboard:1.8.2",
        "guardian PAUSED the rollout of nextgen-dashboard:1.8.2",
        "guardian ROLLED BACK nextgen-dashboard to nextgen-dashboard:1.8.1",
        "nextgen-dashboard:1.8.1 is fully rolled out again",
        "incident closed after",
        "gate: GO again",
    ];
    // Seen within the same tick as the pause, so only their presence is fixed.
    for also in ["payments-health is BAD", "incident inc-payments-health-", "gate: NO-GO (", "business team notified"] {
        assert!(events.iter().any(|e| e.starts_with(also)), "{also:?} missing in:\n{stdout}");
    }
    let mut at = 0;
    for want in expected {
        let found = events[at..].iter().position(|e| e.starts_with(want));
        at += found.unwrap_or_else(|| panic!("{want:?} missing or out of order in:\n{stdout}")) + 1;
    }
    assert!(stdout.contains("demo: ok"), "{stdout}");
    // What the business team's webhook received, once each, in order.
    let told: Vec<&str> = events
        .iter()
        .filter_map(|e| e.strip_prefix("business team notified ("))
        .filter_map(|e| e.split_once("): ").map(|(event, _)| event))
        .collect();
    assert_eq!(told.first(), Some(&"incident_opened"), "{stdout}");
    assert_eq!(told.last(), Some(&"incident_resolved"), "{stdout}");
    let rollback = events.iter().find(|e| e.contains("rolled back from revision 2 to 1") && e.contains("action_taken"));
    assert!(rollback.is_some(), "the rollback was told: {stdout}");
    assert_eq!(told.iter().filter(|e| **e == "incident_opened").count(), 1, "{stdout}");
}
