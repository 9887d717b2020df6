//! Turns a `RawConfig` into a `Config`. Each section validates itself, then
//! one ordered step checks that every check a SLO or target names exists.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::{Problem, Problems};
use super::raw::RawConfig;
use super::{Config, ConnUrl, Env, Environment, Probing, check, defaults, sections};
use crate::units;

/// Validates everything, returning every problem found.
pub fn config(raw: RawConfig, env: &dyn Env) -> Result<Config, Vec<Problem>> {
    let mut p = Problems::default();
    let environment = environment(&mut p, raw.environment.as_ref());
    let listen = listen(&mut p, raw.listen.as_ref());
    let (raw_token, raw_rps) = raw.api.map_or((None, None), |a| (a.token_env, a.requests_per_second));
    let api_token_env = raw_token.and_then(|t| token_env(&mut p, t));
    let api_requests_per_second =
        positive(&mut p, raw_rps, "api.requests_per_second", defaults::API_REQUESTS_PER_SECOND);
    let storage_url = storage_url(&mut p, raw.storage.and_then(|s| s.url), env);
    let (redis_url, redis_key_prefix) = match raw.redis {
        Some(r) => (redis_url(&mut p, r.url, env), r.key_prefix.and_then(|k| key_prefix(&mut p, k))),
        None => (None, None),
    };
    let arr_eur = arr(&mut p, raw.business.and_then(|b| b.arr_eur));
    let probing = probing(&mut p, raw.probing.and_then(|r| r.per_host_per_second));
    // References are checked against every named check, valid or not, so a
    // bad budget is not also reported as a missing check wherever it is named.
    let raw_names: Vec<String> =
        raw.checks.as_ref().map(|c| c.value.iter().map(|k| k.name.value.clone()).collect()).unwrap_or_default();
    let names: HashSet<&str> = raw_names.iter().map(String::as_str).collect();
    let checks = check::checks(&mut p, raw.checks, env);
    let slos = sections::slos(&mut p, raw.slos.unwrap_or_default(), &names);
    let guard = sections::guard(&mut p, raw.guard, &names);
    let notify = sections::notify(&mut p, raw.notify);
    let gate = sections::gate(&mut p, raw.gate);
    stale_covers_checks(&mut p, &checks, &gate);
    match (environment, listen) {
        (Some(environment), Some(listen)) if p.is_empty() => Ok(Config {
            environment,
            listen,
            api_token_env,
            api_requests_per_second,
            storage_url,
            redis_url,
            redis_key_prefix,
            arr_eur,
            probing,
            checks,
            slos,
            guard,
            notify,
            gate,
        }),
        _ => {
            // Report in file order; problems without a place (missing fields) last.
            p.0.sort_by_key(|problem| problem.at.unwrap_or((u64::MAX, 0)));
            Err(p.0)
        }
    }
}

/// `gate.stale_after` shorter than a check's interval + timeout would make
/// the gate flap `data_stale` on a healthy check.
fn stale_covers_checks(p: &mut Problems, checks: &[super::Check], gate: &super::Gate) {
    for c in checks.iter().filter(|c| c.interval + c.timeout > gate.stale_after) {
        p.field(
            "gate.stale_after",
            format!(
                "{} is shorter than check {}'s interval + timeout ({}): its results would look stale between probes",
                units::format_duration(gate.stale_after),
                c.name,
                units::format_duration(c.interval + c.timeout)
            ),
        );
    }
}

fn environment(p: &mut Problems, raw: Option<&Spanned<String>>) -> Option<Environment> {
    let Some(raw) = raw else {
        p.field("environment", "missing (one of dev, staging-shared, prod)");
        return None;
    };
    let env = Environment::parse(&raw.value);
    if env.is_none() {
        p.at(raw, "environment", format!("{:?} is not one of dev, staging-shared, prod", raw.value));
    }
    env
}

fn listen(p: &mut Problems, raw: Option<&Spanned<String>>) -> Option<SocketAddr> {
    let Some(raw) = raw else {
        return defaults::LISTEN.parse().ok();
    };
    let addr = raw.value.parse().ok();
    if addr.is_none() {
        p.at(raw, "listen", format!("{:?} is not an address like 0.0.0.0:9090", raw.value));
    }
    addr
}

fn token_env(p: &mut Problems, raw: Spanned<String>) -> Option<String> {
    let ok =
        !raw.value.is_empty() && raw.value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        p.at(
            &raw,
            "api.token_env",
            format!("{:?} is not an environment variable name like GUARDIAN_API_TOKEN", raw.value),
        );
    }
    ok.then_some(raw.value)
}

/// Connection URLs carry passwords, so clusters fill them from Secrets as
/// `${VAR}`; the value is expanded before it is checked, and only the
/// variable's name ever appears in an error.
fn expanded(p: &mut Problems, raw: Spanned<String>, path: &str, env: &dyn Env) -> Option<Spanned<String>> {
    match super::env::expand(&raw.value, env) {
        Ok(value) => Some(Spanned { value, ..raw }),
        Err(e) => {
            p.at(&raw, path, e);
            None
        }
    }
}

fn storage_url(p: &mut Problems, raw: Option<Spanned<String>>, env: &dyn Env) -> ConnUrl {
    let Some(raw) = raw else { return ConnUrl::new(defaults::STORAGE_URL.to_string()) };
    let Some(raw) = expanded(p, raw, "storage.url", env) else { return ConnUrl::new(String::new()) };
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|k| raw.value.starts_with(k)) {
        p.at(&raw, "storage.url", format!("{:?} is neither sqlite://… nor postgres://…", redact_url(&raw.value)));
    }
    ConnUrl::new(raw.value)
}

fn redis_url(p: &mut Problems, raw: Spanned<String>, env: &dyn Env) -> Option<ConnUrl> {
    let raw = expanded(p, raw, "redis.url", env)?;
    match url::Url::parse(&raw.value) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") => Some(ConnUrl::new(raw.value)),
        _ => {
            p.at(&raw, "redis.url", format!("{:?} is not a redis:// or rediss:// URL", redact_url(&raw.value)));
            None
        }
    }
}

fn key_prefix(p: &mut Problems, raw: Spanned<String>) -> Option<String> {
    if raw.value.is_empty() || raw.value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        p.at(&raw, "redis.key_prefix", format!("{:?} must be non-empty, without spaces", raw.value));
        return None;
    }
    Some(raw.value)
}

fn arr(p: &mut Problems, raw: Option<Spanned<f64>>) -> f64 {
    let Some(raw) = raw else { return defaults::ARR_EUR };
    if !(raw.value.is_finite() && raw.value >= 0.0) {
        p.at(&raw, "business.arr_eur", "must be a positive amount in euros");
    }
    raw.value
}

fn probing(p: &mut Problems, raw: Option<Spanned<u32>>) -> Probing {
    Probing { per_host_per_second: positive(p, raw, "probing.per_host_per_second", defaults::PER_HOST_PER_SECOND) }
}

fn positive(p: &mut Problems, raw: Option<Spanned<u32>>, path: &str, default: u32) -> NonZeroU32 {
    let fallback = NonZeroU32::new(default).unwrap_or(NonZeroU32::MIN);
    match raw {
        None => fallback,
        Some(raw) => NonZeroU32::new(raw.value).unwrap_or_else(|| {
            p.at(&raw, path, "must be at least 1");
            fallback
        }),
    }
}

/// Parses a duration field, recording a problem when it is bad or zero.
pub fn duration(p: &mut Problems, raw: &Spanned<String>, path: &str) -> Option<Duration> {
    match units::parse_duration(&raw.value) {
        Ok(d) if d.is_zero() => {
            p.at(raw, path, "must be longer than 0");
            None
        }
        Ok(d) if d > defaults::MAX_DURATION => {
            p.at(raw, path, format!("{} is longer than a year; that is surely a typo", raw.value));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            p.at(raw, path, e);
            None
        }
    }
}

/// Parses an http(s) URL field.
pub fn http_url(p: &mut Problems, raw: &Spanned<String>, path: &str) -> Option<url::Url> {
    match url::Url::parse(&raw.value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Ok(u) => {
            p.at(
                raw,
                path,
                format!(
                    "{:?} must be an http:// or https:// URL with a host (got scheme {})",
                    redact_url(&raw.value),
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            p.at(raw, path, format!("{:?} is not a URL: {e}", redact_url(&raw.value)));
            None
        }
    }
}

/// Checks a name against `[a-z0-9-]+`, the form metric labels and URLs keep.
pub fn name(p: &mut Problems, raw: &Spanned<String>, path: &str) -> bool {
    let ok = !raw.value.is_empty()
        && raw.value.len() <= 63
        && raw.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        p.at(raw, path, format!("{:?} must match [a-z0-9-]+ (at most 63 characters)", raw.value));
    }
    ok
}

/// A URL as it may appear in an error or a log: any `user:password@` has its
/// password masked, even when the text does not parse as a URL.
pub fn redact_url(text: &str) -> String {
    mask_password_params(&mask_userinfo(text))
}

/// Masks what follows the first `:` of every `user:password` before an `@`.
/// The url crate reads a password in more shapes than `scheme://u:p@h`
/// (`http:/u:p@h`, `http:u:p@h`, with tabs or newlines anywhere), so this
/// does not look for `://`: it takes each `@`, walks back to the start of its
/// authority (a space, slash, quote or bracket) and masks after the first
/// colon there. A colon before an `@` in a path segment is masked too: it
/// over-masks, never under-masks.
fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        let start = before.rfind(|c: char| " /\\\"'<>([{,;=".contains(c)).map_or(0, |i| i + 1);
        match before[start..].find(':') {
            Some(colon) => {
                out.push_str(&before[..start + colon + 1]);
                out.push_str("***");
            }
            None => out.push_str(before),
        }
        out.push('@');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

/// Query parameters that carry credentials are masked too: `password=` and
/// `sslpassword=` (PostgreSQL URLs), tokens, keys, secrets and signatures
/// (`access_token=`, `api_key=`, `sig=` as in Teams' workflow URLs).
pub fn mask_password_params(text: &str) -> String {
    let Some(q) = text.find('?') else { return text.to_string() };
    let (head, query) = text.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}{}", parts.join("&"))
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "pwd", "key", "sig", "signature"].iter().any(|s| name.ends_with(s))
        || ["token", "secret", "auth"].iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_masked_even_in_urls_that_do_not_parse() {
        assert_eq!(redact_url("postgres://guardian:hunter2@db:5432/g"), "postgres://guardian:***@db:5432/g");
        assert_eq!(redact_url("http://admin:hunter2@nextgen:99999/x"), "http://admin:***@nextgen:99999/x");
        assert_eq!(redact_url("redis://:p%40ss@redis:6379"), "redis://:***@redis:6379");
        assert_eq!(redact_url("http://nextgen:7001/a@b"), "http://nextgen:7001/a@b");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_url("postgres://db/g?user=x&password=hunter2&sslpassword=p"),
            "postgres://db/g?user=x&password=***&sslpassword=***"
        );
        assert_eq!(
            redact_url("https://h/hook?sig=abc&sv=1.0&access_token=t&api_key=k&check=1"),
            "https://h/hook?sig=***&sv=1.0&access_token=***&api_key=***&check=1"
        );
    }
}
