//! Validates the `slos`, `guard`, `notify` and `gate` sections, including
//! that every check they name exists.

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::error::Problems;
use super::raw::{RawGate, RawGuard, RawNotify, RawSlo, RawTarget, RawWindow};
use super::validate::{duration, http_url, name};
use super::{
    Action, DeployWindow, Environment, Gate, Guard, GuardMode, Lease, Notify, Slo, Target, TargetKind, Webhook,
    WebhookFormat, defaults,
};

pub fn slos(p: &mut Problems, raw: Vec<RawSlo>, checks: &HashSet<&str>) -> Vec<Slo> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let path = format!("slos[{i}]");
        name(p, &s.name, &format!("{path}.name"));
        if !seen.insert(s.name.value.clone()) {
            p.at(&s.name, format!("{path}.name"), format!("duplicate SLO name {:?}", s.name.value));
        }
        if s.checks.value.is_empty() {
            p.at(&s.checks, format!("{path}.checks"), "empty: an SLO needs at least one check");
        }
        let refs = check_refs(p, &s.checks.value, checks, &format!("{path}.checks"));
        let objective = s.objective.as_ref().map_or(defaults::SLO_OBJECTIVE, |o| {
            if !(o.value > 0.0 && o.value < 1.0) {
                p.at(o, format!("{path}.objective"), format!("{} must be between 0 and 1, e.g. 0.999", o.value));
            }
            o.value
        });
        let window = match &s.window {
            None => Some(defaults::SLO_WINDOW),
            Some(w) => duration(p, w, &format!("{path}.window")).filter(|d| {
                let ok = *d <= defaults::MAX_SLO_WINDOW && *d >= std::time::Duration::from_secs(60);
                if !ok {
                    p.at(w, format!("{path}.window"), format!("{} must be between 1m and 90d", w.value));
                }
                ok
            }),
        };
        if let Some(window) = window {
            out.push(Slo { name: s.name.value, checks: refs, objective, window });
        }
    }
    out
}

/// Every name must be a known check; returns the names.
fn check_refs(p: &mut Problems, refs: &[Spanned<String>], checks: &HashSet<&str>, path: &str) -> Vec<String> {
    for r in refs.iter().filter(|r| !checks.contains(r.value.as_str())) {
        p.at(r, path, format!("no check is named {:?}", r.value));
    }
    refs.iter().map(|r| r.value.clone()).collect()
}

pub fn guard(p: &mut Problems, raw: Option<RawGuard>, checks: &HashSet<&str>) -> Guard {
    let raw =
        raw.unwrap_or(RawGuard { mode: None, dry_run: None, targets: None, breach: None, actions: None, lease: None });
    let mode = raw.mode.as_ref().map_or(GuardMode::Off, |m| match m.value.as_str() {
        "kubernetes" => GuardMode::Kubernetes,
        "simulated" => GuardMode::Simulated,
        "off" => GuardMode::Off,
        other => {
            p.at(m, "guard.mode", format!("{other:?} is not one of kubernetes, simulated, off"));
            GuardMode::Off
        }
    });
    let targets = raw
        .targets
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, t)| target(p, t, checks, &format!("guard.targets[{i}]")))
        .collect();
    let (breach_window, breach_max_bad, confirm_interval) = breach(p, raw.breach);
    let actions = match raw.actions {
        None => vec![Action::Pause, Action::Rollback, Action::Notify],
        Some(list) => list.iter().filter_map(|a| action(p, a)).collect(),
    };
    Guard {
        mode,
        dry_run: raw.dry_run.is_some_and(|d| d.value),
        targets,
        breach_window,
        breach_max_bad,
        confirm_interval,
        actions,
        lease: lease(p, raw.lease),
    }
}

/// Leader election timing: the leader renews every `renew_every`, others
/// wait `duration` after the Lease last changed; two renewals may fail
/// before leadership lapses only if `renew_every` is at most a third of it.
fn lease(p: &mut Problems, raw: Option<super::raw::RawLease>) -> Lease {
    let mut lease = Lease { name: None, duration: defaults::LEASE_DURATION, renew_every: defaults::LEASE_RENEW_EVERY };
    let Some(raw) = raw else { return lease };
    if let Some(n) = &raw.name {
        let ok = !n.value.is_empty()
            && n.value.len() <= 253
            && n.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if ok {
            lease.name = Some(n.value.clone());
        } else {
            p.at(
                n,
                "guard.lease.name",
                format!("{:?} is not a Kubernetes object name (lowercase letters, digits, - and .)", n.value),
            );
        }
    }
    if let Some(d) = raw.duration.as_ref().and_then(|d| duration(p, d, "guard.lease.duration")) {
        lease.duration = d;
    }
    if let Some(r) = raw.renew_every.as_ref().and_then(|r| duration(p, r, "guard.lease.renew_every")) {
        lease.renew_every = r;
    }
    if lease.duration < std::time::Duration::from_secs(1) || lease.renew_every * 3 > lease.duration {
        let msg = format!(
            "renew_every ({}) must be at most a third of duration ({}), and duration at least 1s",
            crate::units::format_duration(lease.renew_every),
            crate::units::format_duration(lease.duration)
        );
        match raw.renew_every.as_ref().or(raw.duration.as_ref()) {
            Some(at) => p.at(at, "guard.lease", msg),
            None => p.field("guard.lease", msg),
        }
    }
    lease
}

fn action(p: &mut Problems, a: &Spanned<String>) -> Option<Action> {
    match a.value.as_str() {
        "pause" => Some(Action::Pause),
        "rollback" => Some(Action::Rollback),
        "notify" => Some(Action::Notify),
        other => {
            p.at(a, "guard.actions", format!("{other:?} is not one of pause, rollback, notify"));
            None
        }
    }
}

fn breach(p: &mut Problems, raw: Option<super::raw::RawBreach>) -> (u32, u32, std::time::Duration) {
    let Some(b) = raw else {
        return (defaults::BREACH_WINDOW, defaults::BREACH_MAX_BAD, defaults::CONFIRM_INTERVAL);
    };
    let window = b.window.as_ref().map_or(defaults::BREACH_WINDOW, |w| w.value);
    let max_bad = b.max_bad.as_ref().map_or(defaults::BREACH_MAX_BAD, |m| m.value);
    if let Some(w) = b.window.as_ref().filter(|w| w.value == 0 || w.value > 100) {
        p.at(w, "guard.breach.window", format!("{} must be between 1 and 100 probes", w.value));
    }
    if max_bad == 0 || max_bad > window {
        let msg = format!("max_bad {max_bad} must be between 1 and window {window}");
        match &b.max_bad {
            Some(m) => p.at(m, "guard.breach.max_bad", msg),
            None => p.field("guard.breach.max_bad", msg),
        }
    }
    let confirm = b
        .confirm_interval
        .as_ref()
        .and_then(|c| duration(p, c, "guard.breach.confirm_interval"))
        .unwrap_or(defaults::CONFIRM_INTERVAL);
    (window, max_bad, confirm)
}

fn target(p: &mut Problems, t: RawTarget, checks: &HashSet<&str>, path: &str) -> Option<Target> {
    let kind = match t.kind.value.as_str() {
        "Deployment" => Some(TargetKind::Deployment),
        "Rollout" => Some(TargetKind::Rollout),
        other => {
            p.at(&t.kind, format!("{path}.kind"), format!("{other:?} is not Deployment or Rollout"));
            None
        }
    };
    for (field, v) in [("namespace", &t.namespace), ("name", &t.name)] {
        if !is_dns_label(&v.value) {
            p.at(
                v,
                format!("{path}.{field}"),
                format!("{:?} is not a Kubernetes name (lowercase letters, digits, '-', '.')", v.value),
            );
        }
    }
    let refs = match &t.checks {
        Some(list) => check_refs(p, list, checks, &format!("{path}.checks")),
        None => checks.iter().map(|c| c.to_string()).collect(),
    };
    Some(Target { kind: kind?, namespace: t.namespace.value, name: t.name.value, checks: refs })
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub fn notify(p: &mut Problems, raw: Option<RawNotify>) -> Notify {
    let Some(raw) = raw else { return Notify::default() };
    let alertmanager = raw
        .alertmanager
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, u)| http_url(p, u, &format!("notify.alertmanager[{i}]")))
        .collect();
    let mut webhooks = Vec::new();
    for (i, w) in raw.webhooks.unwrap_or_default().into_iter().enumerate() {
        let path = format!("notify.webhooks[{i}]");
        let url = http_url(p, &w.url, &format!("{path}.url"));
        let format = match w.format.as_ref().map(|f| (f, f.value.as_str())) {
            None | Some((_, "generic")) => Some(WebhookFormat::Generic),
            Some((_, "slack")) => Some(WebhookFormat::Slack),
            Some((_, "teams")) => Some(WebhookFormat::Teams),
            Some((f, other)) => {
                p.at(f, format!("{path}.format"), format!("{other:?} is not one of slack, teams, generic"));
                None
            }
        };
        if let (Some(url), Some(format)) = (url, format) {
            webhooks.push(Webhook { url, format });
        }
    }
    let resend_every = match raw.resend_every.as_ref() {
        None => defaults::ALERT_RESEND_EVERY,
        Some(r) => match duration(p, r, "notify.resend_every") {
            Some(d) if (std::time::Duration::from_secs(1)..=defaults::ALERT_RESEND_MAX).contains(&d) => d,
            Some(_) => {
                let most = humantime::format_duration(defaults::ALERT_RESEND_MAX);
                p.at(
                    r,
                    "notify.resend_every",
                    format!("must be between 1s and {most}, below Alertmanager's resolve_timeout (5m by default)"),
                );
                defaults::ALERT_RESEND_EVERY
            }
            None => defaults::ALERT_RESEND_EVERY,
        },
    };
    Notify { alertmanager, resend_every, webhooks }
}

pub fn gate(p: &mut Problems, raw: Option<RawGate>) -> Gate {
    let raw = raw.unwrap_or(RawGate {
        stale_after: None,
        min_error_budget_remaining: None,
        require_backup_within: None,
        windows: None,
    });
    let stale_after =
        raw.stale_after.as_ref().and_then(|s| duration(p, s, "gate.stale_after")).unwrap_or(defaults::STALE_AFTER);
    let min_error_budget_remaining =
        raw.min_error_budget_remaining.as_ref().map_or(defaults::MIN_ERROR_BUDGET_REMAINING, |m| {
            if !(0.0..=1.0).contains(&m.value) {
                p.at(m, "gate.min_error_budget_remaining", format!("{} must be between 0 and 1", m.value));
            }
            m.value
        });
    let require_backup_within =
        raw.require_backup_within.as_ref().and_then(|r| duration(p, r, "gate.require_backup_within"));
    let windows = raw
        .windows
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, w)| window(p, w, &format!("gate.windows[{i}]")))
        .collect();
    Gate { stale_after, min_error_budget_remaining, require_backup_within, windows }
}

fn window(p: &mut Problems, w: RawWindow, path: &str) -> Option<DeployWindow> {
    let before = p.0.len();
    name(p, &w.name, &format!("{path}.name"));
    let mut environments = Vec::new();
    for e in &w.environments.value {
        match Environment::parse(&e.value) {
            Some(env) => environments.push(env),
            None => p.at(
                e,
                format!("{path}.environments"),
                format!("{:?} is not one of dev, staging-shared, prod", e.value),
            ),
        }
    }
    if w.environments.value.is_empty() {
        p.at(&w.environments, format!("{path}.environments"), "empty: name the environments this window applies to");
    }
    let timezone = jiff::tz::TimeZone::get(&w.timezone.value)
        .map_err(|_| {
            p.at(
                &w.timezone,
                format!("{path}.timezone"),
                format!("{:?} is not a known time zone (e.g. Europe/Paris)", w.timezone.value),
            )
        })
        .ok();
    let days = days(p, w.days.as_ref(), path);
    let start = clock_time(p, &w.start, &format!("{path}.start"));
    let end = clock_time(p, &w.end, &format!("{path}.end"));
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        {
            p.at(&w.end, format!("{path}.end"), format!("end {} must be after start {}", w.end.value, w.start.value));
        }
    }
    if p.0.len() > before {
        return None;
    }
    Some(DeployWindow { name: w.name.value, environments, timezone: timezone?, days, start: start?, end: end? })
}

fn days(p: &mut Problems, raw: Option<&Spanned<Vec<Spanned<String>>>>, path: &str) -> Vec<jiff::civil::Weekday> {
    use jiff::civil::Weekday::*;
    let Some(raw) = raw else { return vec![Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday] };
    let mut out = Vec::new();
    for d in &raw.value {
        match d.value.as_str() {
            "mon" => out.push(Monday),
            "tue" => out.push(Tuesday),
            "wed" => out.push(Wednesday),
            "thu" => out.push(Thursday),
            "fri" => out.push(Friday),
            "sat" => out.push(Saturday),
            "sun" => out.push(Sunday),
            other => {
                p.at(d, format!("{path}.days"), format!("{other:?} is not one of mon, tue, wed, thu, fri, sat, sun"))
            }
        }
    }
    out
}

fn clock_time(p: &mut Problems, raw: &Spanned<String>, path: &str) -> Option<jiff::civil::Time> {
    let parsed = (raw.value.len() == 5).then(|| jiff::civil::Time::strptime("%H:%M", &raw.value).ok()).flatten();
    if parsed.is_none() {
        p.at(raw, path, format!("{:?} is not a time like 12:00", raw.value));
    }
    parsed
}
