#!/usr/bin/python3
"""Draws the figures of a greenlight-sim replay (docs/REPLAY.md).

Usage: /usr/bin/python3 services/sim/plot_replay.py OUT_DIR

Reads OUT_DIR/summary.csv, summary.json, jobs.csv and intensity.csv (written by
greenlight-sim --out_dir) and writes:
  carbon_vs_cost.png  total carbon against total cost, one point per policy
  sample_day.png      one row per policy: the grid intensity of the zones its
                      jobs ran in on the sample day, and the GPUs running there
                      (5-minute bins, stacked by zone)
Needs Debian's python3-matplotlib; no other dependency.
"""
import csv
import datetime
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

UTC = datetime.timezone.utc


def parse_time(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def carbon_vs_cost(out_dir, summary):
    fig, ax = plt.subplots(figsize=(7, 5))
    # Policies within 1 % of the axes' ranges of each other share one point and label.
    rows = [(row["policy"], float(row["cost_usd"]), float(row["carbon_kg"])) for row in summary]
    first = summary[0]
    bc, bg = float(first["engine_baseline_cost_usd"]), float(first["engine_baseline_carbon_kg"])
    # The ranges as drawn: carbon from 0, with the carbon-blind point.
    xs, ys = [r[1] for r in rows] + [bc], [r[2] for r in rows] + [bg, 0.0]
    dx, dy = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    points = []  # [cost, carbon, names]
    for name, cost, carbon in rows:
        for p in points:
            if abs(p[0] - cost) <= 0.01 * dx and abs(p[1] - carbon) <= 0.01 * dy:
                p[2].append(name)
                break
        else:
            points.append([cost, carbon, [name]])
    for i, (cost, carbon, names) in enumerate(points):
        ax.scatter([cost], [carbon], s=60, zorder=3)
        # Labels of nearby points are stacked so that they do not overlap.
        near = sum(1 for p in points[:i] if abs(p[0] - cost) <= 0.15 * dx and abs(p[1] - carbon) <= 0.1 * dy)
        ax.annotate(" = ".join(names), (cost, carbon), textcoords="offset points",
                    xytext=(6, 6 + 14 * near),
                    ha="right" if cost > min(xs) + 0.6 * dx else "left")
    # The decisions' own carbon-blind baseline (cheapest pool at once, cost
    # ties broken by pool id) under the first policy, for reference.
    if bc > 0:
        ax.scatter([bc], [bg], s=60, facecolors="none", edgecolors="grey", zorder=3)
        ax.annotate("carbon-blind baseline of the decisions", (bc, bg), textcoords="offset points",
                    xytext=(6, -12), color="grey")
    ax.set_xlabel("total cost (USD)")
    ax.set_ylabel("total emissions (kg CO2e)")
    ax.set_title("Replay: carbon against cost per policy")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = os.path.join(out_dir, "carbon_vs_cost.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def sample_day(out_dir, summary, info, jobs, intensity):
    day = datetime.datetime.strptime(info["sample_day"], "%Y-%m-%d").replace(tzinfo=UTC)
    step = datetime.timedelta(minutes=5)
    bins = [day + i * step for i in range(24 * 12 + 1)]
    curves, measured = {}, set()
    for row in intensity:
        curves.setdefault(row["zone"], []).append((parse_time(row["time"]), float(row["g_per_kwh"])))
        if row["estimated"] == "0":
            measured.add(row["zone"])
    policies = [row["policy"] for row in summary]
    colors = {z: plt.cm.tab10(i % 10) for i, z in enumerate(sorted(curves))}
    fig, axes = plt.subplots(len(policies), 1, figsize=(10, 2.3 * len(policies) + 0.8), sharex=True,
                             squeeze=False)
    for ax, policy in zip(axes[:, 0], policies):
        # GPUs running in each 5-minute bin, per zone.
        running = {}
        starts = 0
        for job in jobs:
            if job["policy"] != policy or not job["runs"]:
                continue
            gpus = int(job["gpus"])
            for run in job["runs"].split(";"):
                a, b = (parse_time(t) for t in run.split("/"))
                if b <= bins[0] or a >= bins[-1]:
                    continue
                starts += bins[0] <= a < bins[-1]
                series = running.setdefault(job["zone"], [0] * len(bins))
                for i, t in enumerate(bins):
                    if a <= t < b or (i + 1 < len(bins) and a < bins[i + 1] and b > t):
                        series[i] += gpus
        gpu_ax = ax.twinx()
        zones = sorted(running)
        if zones:
            gpu_ax.stackplot(bins, *[running[z] for z in zones], step="post", alpha=0.3,
                             colors=[colors.get(z, "grey") for z in zones])
        gpu_ax.set_ylabel("GPUs running", fontsize=8)
        gpu_ax.set_ylim(bottom=0)
        for zone in zones:
            pts = curves.get(zone, [])
            if pts:
                ax.step([t for t, _ in pts], [v for _, v in pts], where="post",
                        color=colors.get(zone, "black"), linewidth=1.5,
                        label=f"{zone} intensity" + ("" if zone in measured else " (annual average)"))
        ax.set_zorder(gpu_ax.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.set_title(f"{policy}: {starts} runs start on the day", fontsize=9, loc="left")
        ax.set_ylabel("g CO2e/kWh")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if zones:
            ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlim(bins[0], bins[-1])
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))
    axes[-1, 0].set_xlabel(f"{info['sample_day']} (UTC). Lines: grid intensity of the zones the "
                           "policy's jobs ran in; shaded: GPUs running there")
    fig.suptitle("Sample day: grid intensity and job placements per policy")
    fig.tight_layout()
    path = os.path.join(out_dir, "sample_day.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[1]
    summary = read_csv(os.path.join(out_dir, "summary.csv"))
    with open(os.path.join(out_dir, "summary.json")) as f:
        info = json.load(f)
    jobs = read_csv(os.path.join(out_dir, "jobs.csv"))
    intensity = read_csv(os.path.join(out_dir, "intensity.csv"))
    for path in (carbon_vs_cost(out_dir, summary), sample_day(out_dir, summary, info, jobs, intensity)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
