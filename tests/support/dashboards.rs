//! The Grafana dashboards in `dashboards/*.json`: every panel's queries, and
//! a query made concrete (Grafana's variables substituted) so Prometheus or
//! promtool can run or parse it.

use std::path::PathBuf;

use serde_json::Value;

/// One target of one panel.
#[derive(Debug, Clone)]
pub struct Query {
    /// The dashboard's file name, e.g. `guardian-rollouts.json`.
    pub dashboard: String,
    pub panel: String,
    pub expr: String,
}

/// `dashboards/` in the repository.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every `dashboards/*.json`, by file name, parsed; sorted by name.
pub fn files() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid JSON: {e}"));
            (name, json)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel of a dashboard, rows' nested `panels` included (rows too).
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            if let Some(nested) = panel.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The queries of one dashboard (every target with an `expr`).
pub fn queries_of(file: &str, dashboard: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push(Query { dashboard: file.to_string(), panel: title.to_string(), expr: expr.to_string() });
            }
        }
    }
    out
}

/// Every query of every dashboard.
pub fn queries() -> Vec<Query> {
    files().iter().flat_map(|(file, json)| queries_of(file, json)).collect()
}

/// `expr` with Grafana's variables replaced: `$environment` by `environment`,
/// `$check` by `.*` (every check), and the interval variables by `1m`.
pub fn concrete(expr: &str, environment: &str) -> String {
    let mut out = expr.to_string();
    for (var, value) in [
        ("environment", environment),
        ("check", ".*"),
        ("__rate_interval", "1m"),
        ("__interval", "1m"),
        ("__range", "1m"),
    ] {
        out = out.replace(&format!("${{{var}}}"), value);
        // `$name` not followed by more of a name (`$__interval` is not `$__interval_ms`).
        let re = regex::Regex::new(&format!(r"\${}\b", regex::escape(var))).unwrap();
        out = re.replace_all(&out, regex::NoExpand(value)).into_owned();
    }
    out
}

/// Recorded series (`guardian:…`) an expression names.
pub fn recorded_series(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\bguardian:[a-zA-Z0-9_:]+").unwrap();
    let mut out: Vec<String> = re.find_iter(expr).map(|m| m.as_str().to_string()).collect();
    out.sort();
    out.dedup();
    out
}
