#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `deploy/kubernetes`: each overlay builds with `kubectl kustomize`, and what
//! it yields meets issue 8 object by object: namespaces, sizes, the prod HPA,
//! the apps' env and Secret refs, the security context and probes, the
//! per-environment ConfigMap, Guardian's config (parsed by the real loader
//! with the pod's Secret-filled env vars), the RBAC of `deploy/rbac.yaml`,
//! the staging Ingress and validation Job, the prod backup CronJob.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

use guardian::config::{Environment, GuardMode, MapEnv};
use serde_json::{Value, json};

const APPS: [(&str, u16); 3] = [("nextgen-landing", 7000), ("nextgen-dashboard", 7001), ("nextgen-admin", 7002)];

struct Env {
    name: &'static str,
    namespace: &'static str,
    database: &'static str,
    prefix: &'static str,
}

const ENVS: [Env; 3] = [
    Env { name: "dev", namespace: "blueocean-nextgen-dev", database: "nextgen_dev", prefix: "nextgen:dev:" },
    Env {
        name: "staging-shared",
        namespace: "blueocean-staging-shared",
        database: "blueocean_staging_shared",
        prefix: "nextgen:staging-shared:",
    },
    Env { name: "prod", namespace: "blueocean-nextgen-prod", database: "nextgen_production", prefix: "nextgen:prod:" },
];

/// The overlay's objects, or None (with a note) when kubectl is missing outside CI.
fn build(overlay: &str) -> Option<Vec<Value>> {
    build_text(overlay).map(|text| documents(&text))
}

/// What `kubectl kustomize` prints for the overlay.
fn build_text(overlay: &str) -> Option<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes/overlays").join(overlay);
    let out = match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "kubectl is required under CI=true: {e}");
            eprintln!("note: kubectl not found ({e}); skipping the kustomize build of {overlay}");
            return None;
        }
    };
    assert!(out.status.success(), "kubectl kustomize {overlay}: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

/// `kubernetes-validate --strict` (PyPI, offline schemas) on a file: its
/// success and what it printed; None (with a note) when missing outside CI.
fn validate(file: &Path) -> Option<(bool, String)> {
    match Command::new("kubernetes-validate").arg("--strict").arg(file).output() {
        Ok(out) => Some((
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "kubernetes-validate is required under CI=true (pip install kubernetes-validate): {e}"
            );
            eprintln!("note: kubernetes-validate not found ({e}); skipping schema validation");
            None
        }
    }
}

fn documents(text: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line == "---" {
            if !current.trim().is_empty() {
                docs.push(serde_saphyr::from_str::<Value>(&current).unwrap());
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind && d["metadata"]["name"] == name).collect();
    assert_eq!(found.len(), 1, "exactly one {kind} {name}");
    found[0]
}

/// A generated ConfigMap, named `NAME-<hash>`.
fn config_map<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"].as_str().unwrap().rsplit_once('-').is_some_and(|(base, _)| base == name)
        })
        .collect();
    assert_eq!(found.len(), 1, "exactly one ConfigMap {name}-<hash>");
    found[0]
}

fn pod_spec(workload: &Value) -> &Value {
    match workload["kind"].as_str().unwrap() {
        "CronJob" => &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &workload["spec"]["template"]["spec"],
    }
}

fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    pod_spec(workload)["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
}

fn env_var<'a>(container: &'a Value, name: &str) -> &'a Value {
    let vars = container["env"].as_array().unwrap();
    vars.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("env {name} in {}", container["name"]))
}

fn secret_ref(container: &Value, name: &str) -> (String, String) {
    let r = &env_var(container, name)["valueFrom"]["secretKeyRef"];
    (r["name"].as_str().unwrap().to_owned(), r["key"].as_str().unwrap().to_owned())
}

/// Every container of every pod runs as non-root on a read-only root filesystem.
fn assert_locked_down(workload: &Value) {
    let spec = pod_spec(workload);
    let what = &workload["metadata"]["name"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{what}");
    let all =
        spec["containers"].as_array().unwrap().iter().chain(spec["initContainers"].as_array().into_iter().flatten());
    for c in all {
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{what}/{}", c["name"]);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{what}/{}", c["name"]);
        assert!(c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object(), "{what}/{}", c["name"]);
    }
}

fn resources(c: &Value) -> Value {
    c["resources"].clone()
}

fn sizes(req_mem: &str, req_cpu: &str, lim_mem: &str, lim_cpu: &str) -> Value {
    json!({ "requests": { "memory": req_mem, "cpu": req_cpu }, "limits": { "memory": lim_mem, "cpu": lim_cpu } })
}

/// The guardian pod's env vars from the Secret, with made-up values.
fn secret_env() -> MapEnv {
    MapEnv(HashMap::from([
        ("GUARDIAN_POSTGRES_URL".to_owned(), "postgres://guardian:pw@postgres:5432/guardian".to_owned()),
        ("GUARDIAN_REDIS_URL".to_owned(), "redis://redis:6379".to_owned()),
    ]))
}

fn rules(role: &Value) -> Value {
    role["rules"].clone()
}

fn deploy_rbac_role() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml")).unwrap();
    documents(&text).into_iter().find(|d| d["kind"] == "Role").unwrap()
}

#[test]
fn every_object_lives_in_its_overlays_namespace() {
    for e in &ENVS {
        let Some(docs) = build(e.name) else { return };
        let namespaces: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Namespace").collect();
        assert_eq!(namespaces.len(), 1, "{}", e.name);
        assert_eq!(namespaces[0]["metadata"]["name"], e.namespace);
        for d in docs.iter().filter(|d| d["kind"] != "Namespace") {
            assert_eq!(
                d["metadata"]["namespace"], e.namespace,
                "{} {} in {}",
                d["kind"], d["metadata"]["name"], e.name
            );
        }
        let binding = find(&docs, "RoleBinding", "guardian");
        assert_eq!(binding["subjects"][0]["namespace"], e.namespace, "{}", e.name);
    }
}

#[test]
fn the_overlays_yield_the_expected_objects() {
    let common = [
        ("Namespace", 1),
        ("ServiceAccount", 1),
        ("Role", 1),
        ("RoleBinding", 1),
        ("Deployment", 4),
        ("Service", 4),
        ("ServiceMonitor", 1),
        ("PodDisruptionBudget", 1),
        ("NetworkPolicy", 1),
    ];
    let extra: HashMap<&str, Vec<(&str, usize)>> = HashMap::from([
        ("dev", vec![("ConfigMap", 2)]),
        ("staging-shared", vec![("ConfigMap", 3), ("Ingress", 1), ("Job", 1)]),
        ("prod", vec![("ConfigMap", 2), ("HorizontalPodAutoscaler", 1), ("CronJob", 1), ("PersistentVolumeClaim", 1)]),
    ]);
    for e in &ENVS {
        let Some(docs) = build(e.name) else { return };
        let mut want: HashMap<String, usize> = common.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect();
        want.extend(extra[e.name].iter().map(|(k, n)| ((*k).to_owned(), *n)));
        let mut got: HashMap<String, usize> = HashMap::new();
        for d in &docs {
            *got.entry(d["kind"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        assert_eq!(got, want, "{}", e.name);
        let monitor = find(&docs, "ServiceMonitor", "guardian");
        assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
        assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
        assert_eq!(find(&docs, "PodDisruptionBudget", "guardian")["spec"]["maxUnavailable"], 1);
        let policy = find(&docs, "NetworkPolicy", "guardian");
        assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 9090);
    }
}

#[test]
fn the_per_environment_config_map_names_the_database_and_redis_prefix() {
    for e in &ENVS {
        let Some(docs) = build(e.name) else { return };
        let data = &config_map(&docs, "nextgen-env")["data"];
        assert_eq!(data["NEXTGEN_ENVIRONMENT"], e.name);
        assert_eq!(data["NEXTGEN_DATABASE"], e.database);
        assert_eq!(data["NEXTGEN_REDIS_PREFIX"], e.prefix);
        let generated = config_map(&docs, "nextgen-env")["metadata"]["name"].clone();
        for (app, _) in APPS.iter().map(|(a, p)| (*a, *p)).chain([("guardian", 9090)]) {
            let c = container(find(&docs, "Deployment", app), app);
            assert_eq!(c["envFrom"][0]["configMapRef"]["name"], generated, "{app} in {}", e.name);
        }
    }
}

#[test]
fn the_apps_have_their_ports_env_secrets_and_sizes() {
    for e in &ENVS {
        let Some(docs) = build(e.name) else { return };
        let env_map = config_map(&docs, "nextgen-env")["metadata"]["name"].clone();
        for (app, port) in APPS {
            let d = find(&docs, "Deployment", app);
            assert_locked_down(d);
            let c = container(d, app);
            assert!(
                c["image"].as_str().unwrap().starts_with(&format!("registry.digitalocean.com/blueocean/{app}:")),
                "{}",
                c["image"]
            );
            assert_eq!(c["ports"][0]["containerPort"], port);
            let service = find(&docs, "Service", app);
            assert_eq!(service["spec"]["ports"][0]["port"], port);
            assert_eq!(env_var(c, "DOMAINS_PORTFOLIO_SIZE")["value"], "230");
            assert_eq!(env_var(c, "BUSINESS_CONTINUITY_MODE")["value"], "enabled");
            let mode = &env_var(c, "NEXTGEN_REVENUE_MODE")["valueFrom"]["configMapKeyRef"];
            assert_eq!(mode["name"], env_map);
            assert_eq!(mode["key"], "NEXTGEN_REVENUE_MODE");
            for (var, key) in [
                ("PAYMENT_GATEWAY_CONFIG", "payment-gateway-config"),
                ("AFFILIATION_TRACKING_URL", "affiliation-tracking-url"),
                ("REVENUE_ANALYTICS_KEY", "revenue-analytics-key"),
            ] {
                assert_eq!(secret_ref(c, var), ("nextgen-secrets".to_owned(), key.to_owned()), "{app}");
            }
            if e.name == "prod" {
                assert_eq!(resources(c), sizes("1Gi", "750m", "2Gi", "1500m"), "{app}");
                if app == "nextgen-dashboard" {
                    assert!(d["spec"].get("replicas").is_none(), "the HPA owns the dashboard's replicas");
                } else {
                    assert_eq!(d["spec"]["replicas"], 5, "{app}");
                }
            } else {
                assert_eq!(resources(c), sizes("256Mi", "200m", "512Mi", "400m"), "{app} in {}", e.name);
                assert_eq!(d["spec"]["replicas"], 1, "{app} in {}", e.name);
            }
        }
    }
}

#[test]
fn prod_scales_the_dashboard_with_nextgen_hpa_prod() {
    let Some(docs) = build("prod") else { return };
    let hpa = find(&docs, "HorizontalPodAutoscaler", "nextgen-hpa-prod");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": "nextgen-dashboard" })
    );
    assert_eq!(hpa["spec"]["minReplicas"], 5);
    assert_eq!(hpa["spec"]["maxReplicas"], 15);
    assert_eq!(
        hpa["spec"]["metrics"],
        json!([{ "type": "Resource", "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 60 } } }])
    );
}

#[test]
fn guardian_runs_locked_down_with_its_secrets_probes_and_config() {
    for e in &ENVS {
        let Some(docs) = build(e.name) else { return };
        let d = find(&docs, "Deployment", "guardian");
        assert_locked_down(d);
        assert_eq!(d["spec"]["replicas"], if e.name == "prod" { 2 } else { 1 }, "{}", e.name);
        let spec = pod_spec(d);
        assert_eq!(spec["serviceAccountName"], "guardian");
        let c = container(d, "guardian");
        assert!(c["image"].as_str().unwrap().starts_with("registry.digitalocean.com/blueocean/guardian:"));
        assert_eq!(c["args"], json!(["run", "-c", "/etc/guardian/guardian.yaml"]));
        assert_eq!(c["ports"][0]["containerPort"], 9090);
        assert_eq!(c["livenessProbe"]["httpGet"], json!({ "path": "/healthz", "port": "http" }));
        assert_eq!(c["readinessProbe"]["httpGet"], json!({ "path": "/readyz", "port": "http" }));
        assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["cpu"].is_string());
        assert_eq!(secret_ref(c, "GUARDIAN_API_TOKEN"), ("guardian-secrets".to_owned(), "api-token".to_owned()));
        assert_eq!(env_var(c, "HOSTNAME")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
        let service = find(&docs, "Service", "guardian");
        assert_eq!(service["spec"]["ports"][0]["port"], 9090);

        // The URLs come from the Secret as env vars, which the config names.
        assert_eq!(secret_ref(c, "GUARDIAN_POSTGRES_URL"), ("guardian-secrets".to_owned(), "postgres-url".to_owned()));
        assert_eq!(secret_ref(c, "GUARDIAN_REDIS_URL"), ("guardian-secrets".to_owned(), "redis-url".to_owned()));
        let volumes = spec["volumes"].as_array().unwrap();
        let config_volume = volumes.iter().find(|v| v["name"] == "config").unwrap();
        assert_eq!(config_volume["configMap"]["name"], config_map(&docs, "guardian-config")["metadata"]["name"]);
        let mounts = c["volumeMounts"].as_array().unwrap();
        assert!(mounts.iter().any(|m| m["name"] == "config" && m["mountPath"] == "/etc/guardian"));

        let text = config_map(&docs, "guardian-config")["data"]["guardian.yaml"].as_str().unwrap();
        let config = guardian::config::parse(text, "guardian.yaml", &secret_env())
            .unwrap_or_else(|err| panic!("{}: {:?}", e.name, err.lines()));
        assert_eq!(config.environment, Environment::parse(e.name).unwrap());
        assert_eq!(config.redis_key_prefix.as_deref(), Some(e.prefix));
        assert_eq!(config.storage_url.expose(), "postgres://guardian:pw@postgres:5432/guardian");
        assert_eq!(config.redis_url.as_ref().unwrap().expose(), "redis://redis:6379");
        assert_eq!(config.listen.port(), 9090);
        assert_eq!(config.api_token_env.as_deref(), Some("GUARDIAN_API_TOKEN"));
        assert_eq!(config.guard.mode, GuardMode::Kubernetes);
        assert!(config.checks.len() >= 11, "{}", e.name);
        for check in &config.checks {
            let (host, port) = (check.url.host_str().unwrap(), check.url.port().unwrap());
            assert!(APPS.contains(&(host, port)), "{} probes {host}:{port}", check.name);
        }
        for target in &config.guard.targets {
            assert_eq!(target.namespace, e.namespace, "{}", e.name);
        }
    }
}

#[test]
fn the_role_grants_exactly_what_deploy_rbac_yaml_grants() {
    let want = rules(&deploy_rbac_role());
    for e in &ENVS {
        let Some(docs) = build(e.name) else { return };
        assert_eq!(rules(find(&docs, "Role", "guardian")), want, "{}", e.name);
        assert!(docs.iter().all(|d| d["kind"] != "ClusterRole" && d["kind"] != "ClusterRoleBinding"));
        let binding = find(&docs, "RoleBinding", "guardian");
        assert_eq!(
            binding["roleRef"],
            json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "guardian" })
        );
        assert_eq!(binding["subjects"][0]["name"], "guardian");
    }
}

#[test]
fn staging_serves_its_host_and_validates_through_it() {
    let Some(docs) = build("staging-shared") else { return };
    let ingress = find(&docs, "Ingress", "nextgen");
    let rules = ingress["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["host"], "nextgen.staging-shared.local");
    let backends: BTreeSet<String> = rules[0]["http"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p["backend"]["service"]["name"].as_str().unwrap(),
                p["backend"]["service"]["port"]["number"]
            )
        })
        .collect();
    assert_eq!(backends, APPS.iter().map(|(a, p)| format!("{a}:{p}")).collect::<BTreeSet<_>>());

    let job = find(&docs, "Job", "nextgen-validation");
    assert_locked_down(job);
    let c = container(job, "probe");
    assert!(c["image"].as_str().unwrap().starts_with("registry.digitalocean.com/blueocean/guardian:"));
    assert_eq!(c["args"], json!(["probe", "-c", "/etc/guardian/guardian.yaml"]));
    let volumes = pod_spec(job)["volumes"].as_array().unwrap();
    let validation = config_map(&docs, "guardian-validation");
    assert!(volumes.iter().any(|v| v["configMap"]["name"] == validation["metadata"]["name"]));
    let text = validation["data"]["guardian.yaml"].as_str().unwrap();
    let config = guardian::config::parse(text, "validation.yaml", &MapEnv(HashMap::new()))
        .unwrap_or_else(|err| panic!("{:?}", err.lines()));
    assert_eq!(config.environment, Environment::StagingShared);
    assert!(config.checks.len() >= 10);
    for check in &config.checks {
        assert_eq!(check.url.host_str(), Some("nextgen.staging-shared.local"), "{}", check.name);
    }
}

#[test]
fn prod_backs_up_nextgen_production_nightly_and_reports_it() {
    let Some(docs) = build("prod") else { return };
    let cron = find(&docs, "CronJob", "nextgen-backup");
    assert_locked_down(cron);
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let schedule: Vec<&str> = cron["spec"]["schedule"].as_str().unwrap().split(' ').collect();
    assert_eq!(schedule[2..], ["*", "*", "*"], "once a day");
    // The image runs deploy/scripts/backup-nextgen-prod.sh (tests/deploy_scripts.rs runs it for real).
    let c = container(cron, "backup");
    assert_eq!(c["image"], "registry.digitalocean.com/blueocean/nextgen-backup:0.1.0");
    assert!(c["command"].is_null() && c["args"].is_null(), "the image's entrypoint is the script");
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    assert!(dockerfile.contains("deploy/scripts/backup-nextgen-prod.sh"), "the backup image carries the script");
    let value = |name: &str| env_var(c, name)["value"].as_str().unwrap().to_owned();
    assert_eq!(value("GUARDIAN_URL"), "http://guardian:9090");
    assert_eq!(value("BACKUP_DIR"), "/backups");
    assert_eq!(value("BACKUP_RETENTION_DAYS"), "14");
    assert_eq!(secret_ref(c, "GUARDIAN_API_TOKEN"), ("guardian-secrets".to_owned(), "api-token".to_owned()));
    let env_map = config_map(&docs, "nextgen-env");
    assert_eq!(env_map["data"]["NEXTGEN_DATABASE"], "nextgen_production");
    let db = &env_var(c, "PGDATABASE")["valueFrom"]["configMapKeyRef"];
    assert_eq!(
        (db["name"].clone(), db["key"].clone()),
        (env_map["metadata"]["name"].clone(), json!("NEXTGEN_DATABASE"))
    );
    let volumes = pod_spec(cron)["volumes"].as_array().unwrap();
    let pvc = find(&docs, "PersistentVolumeClaim", "nextgen-backups");
    assert!(volumes.iter().any(|v| v["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]));
    assert!(c["volumeMounts"].as_array().unwrap().iter().any(|m| m["mountPath"] == "/backups"));
}

#[test]
fn every_object_validates_against_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    for e in &ENVS {
        let Some(text) = build_text(e.name) else { return };
        let file = dir.path().join(format!("{}.yaml", e.name));
        std::fs::write(&file, &text).unwrap();
        let Some((ok, report)) = validate(&file) else { return };
        assert!(ok, "{}:\n{report}", e.name);
        // Every built-in object was checked against a schema, not skipped; the
        // one custom resource, the ServiceMonitor, has none in the validator.
        let docs = documents(&text);
        let built_in = docs.iter().filter(|d| d["kind"] != "ServiceMonitor").count();
        let passed = report.lines().filter(|l| l.contains(" passed for resource ")).count();
        assert_eq!(passed, built_in, "{}:\n{report}", e.name);
        assert!(report.contains("Couldn't find schema for kind ServiceMonitor"), "{report}");
        assert_service_monitor_is_well_formed(find(&docs, "ServiceMonitor", "guardian"));
    }

    // The validator is strict: a misspelt field fails, naming it.
    let Some(text) = build_text("dev") else { return };
    let broken = text.replacen("  replicas: 1\n", "  replica: 1\n", 1);
    assert_ne!(broken, text);
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, broken).unwrap();
    let Some((ok, report)) = validate(&file) else { return };
    assert!(!ok && report.contains("'replica' was unexpected"), "{report}");
}

/// prometheus-operator's ServiceMonitor fields that Guardian's uses, with
/// their types: no validator here has the CRD's schema.
fn assert_service_monitor_is_well_formed(monitor: &Value) {
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<BTreeSet<String>>();
    let set = |ks: &[&str]| ks.iter().map(|k| (*k).to_owned()).collect::<BTreeSet<String>>();
    assert_eq!(keys(monitor), set(&["apiVersion", "kind", "metadata", "spec"]));
    assert!(keys(&monitor["spec"]).is_subset(&set(&["selector", "endpoints", "namespaceSelector", "jobLabel"])));
    let labels = monitor["spec"]["selector"]["matchLabels"].as_object().unwrap();
    assert!(!labels.is_empty() && labels.values().all(Value::is_string));
    let duration = |v: &Value| -> u64 {
        let s = v.as_str().unwrap();
        let n: u64 = s.strip_suffix('s').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{s} is not like 15s"));
        n
    };
    for endpoint in monitor["spec"]["endpoints"].as_array().unwrap() {
        assert!(keys(endpoint).is_subset(&set(&["port", "path", "interval", "scrapeTimeout", "scheme"])), "{endpoint}");
        assert!(endpoint["port"].is_string() && endpoint["path"].as_str().unwrap().starts_with('/'));
        assert!(duration(&endpoint["scrapeTimeout"]) <= duration(&endpoint["interval"]), "{endpoint}");
    }
}
