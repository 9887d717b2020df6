//! `guardian gate --url URL --environment ENV [--wait DUR] [--json]`: asks a
//! running guardian whether `ENV` may deploy now.
//!
//! Exit codes (SPEC): 0 go, 1 no-go, 2 usage (clap rejects a bad
//! environment, URL or duration before anything is sent), 3 when the
//! guardian cannot be reached or answers anything but a consistent gate
//! answer — a 200 whose body says go, or a 409 whose body says no-go, for
//! the environment asked. Anything else fails closed: a deploy script must
//! never read "could not ask" as "go".
//!
//! `--wait` polls until go or the time runs out, backing off from 1 s to
//! 15 s with a little jitter and never sleeping past the deadline; each
//! no-go or failed poll is one line on stderr. At the deadline the exit code
//! is the last answer's (1 no-go, 3 unreachable).

use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use tokio::time::Instant;
use url::Url;

use crate::config::Environment;
use crate::gate::{GateBody, Verdict};

pub const EXIT_GO: u8 = 0;
pub const EXIT_NO_GO: u8 = 1;
pub const EXIT_UNREACHABLE: u8 = 3;

/// One question should take well under this; a guardian slower than this is
/// as good as unreachable for a deploy script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest request timeout while waiting, so a last poll near the
/// deadline still has a fair chance (and overruns it by at most this).
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// A gate body is a few KiB; more is not a gate answer.
const MAX_BODY: usize = 1 << 20;
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// Polls are shortened by up to this share, so many waiting scripts spread out.
const MAX_JITTER: f64 = 0.2;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base URL of a running guardian, e.g. http://guardian:9090
    #[arg(long, value_name = "URL", value_parser = parse_base_url)]
    pub url: Url,
    /// The environment that wants to deploy.
    #[arg(long, value_name = "ENV", value_parser = environment_parser())]
    pub environment: Environment,
    /// Poll until go or until this much time has passed (e.g. 10m).
    #[arg(long, value_name = "DUR", value_parser = crate::units::parse_duration)]
    pub wait: Option<Duration>,
    /// Print the guardian's JSON body as received instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// What one question to the guardian came back with.
#[derive(Debug)]
enum Answer {
    /// A consistent gate answer, with the body as received.
    Decided { body: GateBody, raw: String },
    /// Unreachable, timed out, or not a gate answer: why, for people.
    Failed(String),
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let client = match reqwest::Client::builder()
        .user_agent(concat!("guardian/", env!("CARGO_PKG_VERSION"), " gate"))
        .connect_timeout(REQUEST_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("guardian gate: cannot build the HTTP client: {e}; failing closed");
            return Ok(EXIT_UNREACHABLE);
        }
    };
    let url = gate_url(&args.url, args.environment);
    let answer = match args.wait {
        None => ask(&client, &url, args.environment, REQUEST_TIMEOUT).await,
        Some(wait) => poll(&client, &url, args.environment, wait).await,
    };
    Ok(finish(&answer, args.json))
}

/// Asks until go or `wait` has passed; returns the last answer.
async fn poll(client: &reqwest::Client, url: &Url, env: Environment, wait: Duration) -> Answer {
    let deadline = Instant::now() + wait;
    let mut attempt = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = ask(client, url, env, left.clamp(MIN_REQUEST_TIMEOUT, REQUEST_TIMEOUT)).await;
        let left = deadline.saturating_duration_since(Instant::now());
        if answer.exit_code() == EXIT_GO || left.is_zero() {
            return answer;
        }
        let pause = backoff(attempt, rand::random_range(0.0..=MAX_JITTER), left);
        eprintln!("guardian gate: {}; asking again in {} ({} left)", answer.summary(), seconds(pause), seconds(left));
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

/// The pause after poll number `attempt` (from 0): 1 s doubling up to 15 s,
/// shortened by `jitter` (a share, clamped to 0..=0.2), never past `left`.
pub fn backoff(attempt: u32, jitter: f64, left: Duration) -> Duration {
    let base = BACKOFF_START.saturating_mul(2u32.saturating_pow(attempt)).min(BACKOFF_MAX);
    base.mul_f64(1.0 - jitter.clamp(0.0, MAX_JITTER)).min(left)
}

/// One question: GET the gate, and judge what came back.
async fn ask(client: &reqwest::Client, url: &Url, env: Environment, timeout: Duration) -> Answer {
    let response = match client.get(url.clone()).timeout(timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Answer::Failed(format!("the guardian at {url} did not answer within {}", seconds(timeout)));
        }
        Err(e) => return Answer::Failed(format!("cannot reach the guardian at {url}: {}", root_cause(&e))),
    };
    let status = response.status().as_u16();
    match read_capped(response).await {
        Ok(raw) => match interpret(status, &raw, env) {
            Ok(body) => Answer::Decided { body, raw: String::from_utf8_lossy(&raw).into_owned() },
            Err(why) => Answer::Failed(format!("the guardian at {url} {why}")),
        },
        Err(why) => Answer::Failed(format!("reading the answer of {url} failed: {why}")),
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| root_cause(&e))? {
        raw.extend_from_slice(&chunk);
        if raw.len() > MAX_BODY {
            return Err(format!("the body is larger than {MAX_BODY} bytes"));
        }
    }
    Ok(raw)
}

/// Judges an HTTP answer: `Ok` only for 200 + go or 409 + no-go about `env`.
/// The error completes "the guardian at URL …".
fn interpret(status: u16, raw: &[u8], env: Environment) -> Result<GateBody, String> {
    if status != 200 && status != 409 {
        return Err(format!("answered HTTP {status}, not 200 (go) or 409 (no-go): {}", excerpt(raw)));
    }
    let body: GateBody = serde_json::from_slice(raw)
        .map_err(|e| format!("answered HTTP {status} with a body that is not a gate answer ({e}): {}", excerpt(raw)))?;
    if body.decision.http_status() != status {
        return Err(format!("answered HTTP {status} with decision {:?}, which contradicts it", body.decision.as_str()));
    }
    if body.environment != env.as_str() {
        return Err(format!("answered for environment {:?} when asked about {:?}", body.environment, env.as_str()));
    }
    if body.decision == Verdict::Go && !body.reasons.is_empty() {
        return Err(format!("answered go with {} reason(s) not to, which contradicts it", body.reasons.len()));
    }
    Ok(body)
}

/// Prints the answer (stdout for answers, stderr for failures) and returns its exit code.
fn finish(answer: &Answer, json: bool) -> u8 {
    match answer {
        Answer::Decided { raw, .. } if json => println!("{}", raw.trim_end()),
        Answer::Decided { body, .. } => print!("{}", human(body)),
        Answer::Failed(why) => eprintln!("guardian gate: {why}; failing closed"),
    }
    answer.exit_code()
}

/// `GO prod`, or `NO-GO prod` and one line per reason.
fn human(body: &GateBody) -> String {
    let word = match body.decision {
        Verdict::Go => "GO",
        Verdict::NoGo => "NO-GO",
    };
    let mut out = format!("{word} {}\n", body.environment);
    for r in &body.reasons {
        out += &format!("  {}: {}\n", r.code, r.message);
    }
    if body.decision == Verdict::NoGo && body.reasons.is_empty() {
        out += "  (the guardian gave no reason)\n";
    }
    out
}

impl Answer {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Decided { body, .. } if body.decision == Verdict::Go => EXIT_GO,
            Self::Decided { .. } => EXIT_NO_GO,
            Self::Failed(_) => EXIT_UNREACHABLE,
        }
    }

    /// One line for a poll that was not go.
    fn summary(&self) -> String {
        match self {
            Self::Decided { body, .. } => {
                let codes: Vec<_> = body.reasons.iter().map(|r| r.code.as_str()).collect();
                format!("NO-GO {} ({})", body.environment, codes.join(", "))
            }
            Self::Failed(why) => why.clone(),
        }
    }
}

/// `{base}/api/v1/gate?environment=ENV`, whether or not `base` ends in `/`.
fn gate_url(base: &Url, env: Environment) -> Url {
    let mut url = base.clone();
    let path = format!("{}/api/v1/gate", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.query_pairs_mut().clear().append_pair("environment", env.as_str());
    url
}

fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e}); write e.g. http://guardian:9090"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!("{text:?} is not an http(s) URL; write e.g. http://guardian:9090"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} has a query or fragment; give the guardian's base URL only"));
    }
    Ok(url)
}

fn environment_parser() -> impl TypedValueParser<Value = Environment> {
    PossibleValuesParser::new(Environment::ALL.map(Environment::as_str))
        .try_map(|text| Environment::parse(&text).ok_or_else(|| format!("unknown environment {text:?}")))
}

/// The first bytes of a body, on one line, for an error message.
fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let line: String = text.chars().take(120).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.trim().is_empty() { "empty body".into() } else { format!("{:?}", line.trim()) }
}

/// The innermost cause, e.g. "Connection refused (os error 111)": reqwest's
/// outer layers repeat the URL and say little more.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_fifteen_and_never_passes_the_deadline() {
        let plenty = Duration::from_secs(600);
        let schedule: Vec<u64> = (0..7).map(|n| backoff(n, 0.0, plenty).as_secs()).collect();
        assert_eq!(schedule, [1, 2, 4, 8, 15, 15, 15]);
        assert_eq!(backoff(u32::MAX, 0.0, plenty), Duration::from_secs(15));
        assert_eq!(backoff(3, 0.0, Duration::from_millis(2500)), Duration::from_millis(2500));
        assert_eq!(backoff(0, 0.2, plenty), Duration::from_millis(800));
        assert_eq!(backoff(0, 5.0, plenty), Duration::from_millis(800), "jitter is clamped");
    }

    #[test]
    fn only_a_status_matching_its_decision_for_the_environment_asked_is_an_answer() {
        let body = |decision: &str, env: &str, reasons: &str| {
            format!(
                r#"{{"decision":"{decision}","environment":"{env}","reasons":[{reasons}],"evaluated_at":"2026-01-01T00:00:00Z"}}"#
            )
        };
        let reason = r#"{"code":"outside_window","message":"closed"}"#;
        let prod = Environment::Prod;
        assert!(interpret(200, body("go", "prod", "").as_bytes(), prod).is_ok());
        assert!(interpret(409, body("no-go", "prod", reason).as_bytes(), prod).is_ok());
        let rows = [
            (200, body("no-go", "prod", reason), "contradicts"),
            (409, body("go", "prod", ""), "contradicts"),
            (200, body("go", "prod", reason), "reason(s) not to"),
            (200, body("go", "dev", ""), "asked about \"prod\""),
            (500, body("go", "prod", ""), "HTTP 500"),
            (200, "<html>login</html>".into(), "not a gate answer"),
            (503, String::new(), "empty body"),
        ];
        for (status, text, expected) in rows {
            let err = interpret(status, text.as_bytes(), prod).unwrap_err();
            assert!(err.contains(expected), "{status} {text}: {err}");
        }
    }

    #[test]
    fn the_gate_url_keeps_a_path_prefix_with_or_without_a_trailing_slash() {
        for base in ["http://g:9090", "http://g:9090/"] {
            let url = gate_url(&parse_base_url(base).unwrap(), Environment::StagingShared);
            assert_eq!(url.as_str(), "http://g:9090/api/v1/gate?environment=staging-shared");
        }
        let prefixed = gate_url(&parse_base_url("https://ops.example/guardian/").unwrap(), Environment::Prod);
        assert_eq!(prefixed.as_str(), "https://ops.example/guardian/api/v1/gate?environment=prod");
        assert!(parse_base_url("guardian:9090").is_err());
        assert!(parse_base_url("ftp://g").is_err());
        assert!(parse_base_url("http://g/?x=1").is_err());
    }

    #[test]
    fn the_human_answer_has_one_line_per_reason() {
        let body: GateBody = serde_json::from_str(
            r#"{"decision":"no-go","environment":"prod","reasons":[{"code":"backup_stale","message":"Old."}],"evaluated_at":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(human(&body), "NO-GO prod\n  backup_stale: Old.\n");
    }
}
