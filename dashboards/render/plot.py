#!/usr/bin/env python3
"""Draws a dashboard's panels from a real Prometheus, as a picture for the README.

Grafana is not needed: every panel's queries (with the dashboard variables
filled in) are run with query_range against Prometheus, and each panel
becomes one small time-series plot with its title and unit. What it shows is
the data, not Grafana's styling.

    plot.py --prometheus http://127.0.0.1:9091 --dashboard dashboards/guardian-rollouts.json \
            --environment prod --start 1700000000 --end 1700000300 --out dashboards/img/rollouts.png
"""

import argparse
import json
import math
import re
import sys
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def panels(model):
    for p in model.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def concrete(expr, environment, start, end):
    rng = f"{max(int(end - start), 60)}s"
    expr = re.sub(r"\$\{?environment\}?", environment, expr)
    expr = re.sub(r"\$\{?check\}?(?![a-z_])", ".*", expr)
    expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
    expr = expr.replace("$__interval", "15s").replace("$__range", rng)
    return expr


def query_range(base, expr, start, end, step):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def legend(metric, fmt):
    if fmt:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)
    labels = {k: v for k, v in metric.items() if k not in ("__name__", "environment", "job", "instance")}
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or metric.get("__name__", "value")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--environment", default="prod")
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--end", type=float, required=True)
    ap.add_argument("--step", default="2s")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    model = json.load(open(args.dashboard))
    shown = [p for p in panels(model) if p.get("targets")]
    cols = 3
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 5.2, rows * 2.7), squeeze=False)
    fig.suptitle(f"{model['title']} — environment {args.environment} (data from a real Prometheus)", fontsize=13)
    empty = 0
    for ax, panel in zip(axes.flat, shown):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        title = re.sub(r"\$\{?check\}?", "each check", panel.get("title", ""))
        ax.set_title(title + (f"  [{unit}]" if unit and unit != "none" else ""), fontsize=9)
        drawn = 0
        for t in panel["targets"]:
            expr = concrete(t["expr"], args.environment, args.start, args.end)
            for series in query_range(args.prometheus, expr, args.start, args.end, args.step):
                xs = [float(v[0]) - args.start for v in series["values"]]
                ys = [float(v[1]) for v in series["values"]]
                ys = [y if math.isfinite(y) else float("nan") for y in ys]
                ax.plot(xs, ys, linewidth=1.2, label=legend(series["metric"], t.get("legendFormat", ""))[:40])
                drawn += 1
        if drawn == 0:
            empty += 1
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
        elif drawn <= 6:
            ax.legend(fontsize=6, loc="best")
        ax.tick_params(labelsize=7)
        ax.set_xlabel("seconds", fontsize=7)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(args.out, dpi=80)
    print(f"{args.out}: {len(shown)} panels, {empty} without data", file=sys.stderr)


if __name__ == "__main__":
    main()
