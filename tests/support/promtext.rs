//! Checks Prometheus text exposition: a line-by-line parse of our own, then
//! `promtool check metrics` when promtool is on PATH (CI installs it, and a
//! missing promtool fails there).

use std::io::Write;
use std::process::{Command, Stdio};

pub fn assert_valid(text: &str) {
    let mut samples = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(rest.starts_with("HELP ") || rest.starts_with("TYPE "), "bad comment line: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value), "bad value: {line}");
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad name: {line}");
        if let Some(labels) = series.strip_prefix(name) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')), "bad labels: {line}");
        }
        samples += 1;
    }
    assert!(samples > 0, "no samples");
    promtool(text);
}

fn promtool(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "promtool is not on PATH, and CI=true requires it");
        eprintln!("promtool not on PATH: only the built-in parse was checked");
        return;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics failed:\n{report}");
    // promtool's lint findings (not errors) are printed but do not fail the check.
    assert!(!report.contains("error"), "promtool: {report}");
}

/// The value of the sample `name` whose labels include all of `labels`, in any order.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        let wanted =
            labels.iter().all(|(k, v)| rest.trim_end_matches('}').split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        (n == name && wanted).then(|| value.parse().ok()).flatten()
    })
}
