//! The page's two drawings, both without any asset: a check's last probe
//! latencies as an inline SVG sparkline with its budget as a dashed line,
//! and a horizontal bar (latency against budget, error budget left) made of
//! two inline-styled elements.

use std::fmt::Write;
use std::time::Duration;

use crate::probe::{Outcome, RECENT_PROBES, RecentProbe};
use crate::units::format_duration;

/// The drawing's own units; the SVG scales to the card's width, keeping its shape.
const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 40.0;
/// Room for the dots at the edges.
const PAD: f64 = 3.0;
/// Headroom above the budget line, so a line at the budget is not the top edge.
const ABOVE_BUDGET: f64 = 1.25;

/// A sparkline of `probes` (oldest first), newest at the right edge; slow
/// and failed probes are red dots. The vertical scale runs from 0 to 1.25 ×
/// the budget, or to the slowest probe when it is slower.
pub fn sparkline(out: &mut String, check: &str, probes: &[RecentProbe], budget: Duration) {
    let budget_s = budget.as_secs_f64();
    let slowest = probes.iter().map(|p| p.latency.as_secs_f64()).fold(0.0, f64::max);
    let top = (budget_s * ABOVE_BUDGET).max(slowest).max(f64::EPSILON);
    let y = |secs: f64| HEIGHT - PAD - (secs / top) * (HEIGHT - 2.0 * PAD);
    let step = (WIDTH - 2.0 * PAD) / (RECENT_PROBES.max(2) - 1) as f64;
    let shown = &probes[probes.len().saturating_sub(RECENT_PROBES)..];
    let x = |i: usize| WIDTH - PAD - (shown.len() - 1 - i) as f64 * step;
    let bad = shown.iter().filter(|p| p.outcome != Outcome::Ok).count();
    let check = super::t(check);
    let _ = write!(
        out,
        "<svg class=spark viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=img aria-label=\"{check}: last {n} probe latencies \
         against the {b} budget, {bad} bad\"><title>{check}: last {n} probes, slowest {slow}, {bad} bad; dashed: the {b} \
         budget</title><line class=budget x1=0 x2={WIDTH} y1={by:.1} y2={by:.1}></line>",
        n = shown.len(),
        b = format_duration(budget),
        slow = format_duration(Duration::from_secs_f64(slowest)),
        by = y(budget_s),
    );
    if shown.len() > 1 {
        out.push_str("<polyline class=lat points=\"");
        for (i, p) in shown.iter().enumerate() {
            let _ = write!(out, "{:.1},{:.1} ", x(i), y(p.latency.as_secs_f64()));
        }
        out.push_str("\"></polyline>");
    }
    for (i, p) in shown.iter().enumerate() {
        let cls = if p.outcome == Outcome::Ok { "ok" } else { "bad" };
        if cls == "bad" || i + 1 == shown.len() {
            let _ =
                write!(out, "<circle class={cls} cx={:.1} cy={:.1} r=3></circle>", x(i), y(p.latency.as_secs_f64()));
        }
    }
    out.push_str("</svg>");
}

/// A bar filled to `fill` (0 to 1) with a marker at `marker` (0 to 1), in
/// the colour class `cls`; `label` is its tooltip.
pub fn bar(out: &mut String, fill: f64, marker: Option<f64>, cls: &str, label: &str) {
    let pct = |v: f64| (v.clamp(0.0, 1.0) * 100.0 * 10.0).round() / 10.0;
    let _ = write!(out, "<div class=bar title=\"{label}\"><i class={cls} style=\"width:{}%\"></i>", pct(fill));
    if let Some(m) = marker {
        let _ = write!(out, "<b style=\"left:{}%\"></b>", pct(m));
    }
    out.push_str("</div>");
}

/// Latency against budget: the bar spans 1.5 × the budget, so the budget
/// marker sits at two thirds and a slow probe visibly overshoots it.
pub fn latency_bar(out: &mut String, latency: Duration, budget: Duration) {
    const SPAN: f64 = 1.5;
    let ratio = latency.as_secs_f64() / budget.as_secs_f64().max(f64::EPSILON);
    let cls = match ratio {
        r if r > 1.0 => "bad",
        r if r > 0.8 => "warn",
        _ => "good",
    };
    let label = format!("{} of the {} budget", format_duration(latency), format_duration(budget));
    bar(out, ratio / SPAN, Some(1.0 / SPAN), cls, &label);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(seq: u64, ms: u64, outcome: Outcome) -> RecentProbe {
        RecentProbe { seq, latency: Duration::from_millis(ms), outcome }
    }

    #[test]
    fn the_sparkline_draws_every_probe_the_budget_line_and_the_bad_ones_in_red() {
        let probes = [probe(1, 100, Outcome::Ok), probe(2, 3500, Outcome::Slow), probe(3, 200, Outcome::Ok)];
        let mut out = String::new();
        sparkline(&mut out, "payments-health", &probes, Duration::from_secs(3));
        assert!(out.starts_with("<svg class=spark") && out.ends_with("</svg>"), "{out}");
        let points = out.split("points=\"").nth(1).and_then(|p| p.split('"').next()).unwrap();
        assert_eq!(points.split_whitespace().count(), 3, "three points: {out}");
        assert_eq!(out.matches("<circle class=bad").count(), 1, "{out}");
        assert_eq!(out.matches("<circle class=ok").count(), 1, "the newest is marked: {out}");
        assert!(out.contains("slowest 3.50s, 1 bad; dashed: the 3s budget"), "{out}");
        // The top is 1.25 × the budget (3.75 s): the budget line sits a fifth below it.
        assert!(out.contains("y1=9.8"), "{out}");
    }

    #[test]
    fn a_sparkline_without_probes_is_only_the_budget_line() {
        let mut out = String::new();
        sparkline(&mut out, "c", &[], Duration::from_secs(1));
        assert!(out.contains("<line class=budget") && !out.contains("polyline") && !out.contains("circle"), "{out}");
    }

    #[test]
    fn the_latency_bar_puts_the_budget_at_two_thirds_and_caps_an_overshoot() {
        let mut out = String::new();
        latency_bar(&mut out, Duration::from_secs(9), Duration::from_secs(3));
        assert!(out.contains("class=bad style=\"width:100%\"") && out.contains("left:66.7%"), "{out}");
        out.clear();
        latency_bar(&mut out, Duration::from_millis(300), Duration::from_secs(3));
        assert!(out.contains("class=good style=\"width:6.7%\""), "{out}");
    }
}
