"""The PromQL expressions greenlight ships (Grafana dashboard, recording and
alert rules) and helpers shared by the static and end-to-end tests."""

import json
import os
import re
import subprocess
import tempfile

import yaml

ROOT = os.environ.get(
    "GREENLIGHT_ROOT",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
PROMETHEUS_DIR = os.path.join(ROOT, "deploy", "prometheus")
GRAFANA_DIR = os.path.join(ROOT, "deploy", "grafana")
DASHBOARD = os.path.join(GRAFANA_DIR, "dashboards", "greenlight.json")
RULE_FILES = [
    os.path.join(PROMETHEUS_DIR, "rules", "greenlight_recording.yml"),
    os.path.join(PROMETHEUS_DIR, "rules", "greenlight_alerts.yml"),
]
PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool")

# What Grafana substitutes before sending a query; the values are what a
# Prometheus test needs to evaluate the query over a short live run.
DEFAULT_GRAFANA_VARS = {
    "team": ".*",
    "region": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_panels(dashboard):
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        for nested in panel.get("panels", []):
            yield nested


def dashboard_exprs(dashboard=None):
    """[(where, expr)] for every query target of the dashboard."""
    dashboard = dashboard or load_dashboard()
    out = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                out.append((f'panel "{panel["title"]}" target {target["refId"]}', target["expr"]))
    return out


def load_rules():
    """[(file, group, rule)] of every rule file."""
    out = []
    for path in RULE_FILES:
        with open(path) as f:
            doc = yaml.safe_load(f)
        for group in doc["groups"]:
            for rule in group["rules"]:
                out.append((os.path.basename(path), group["name"], rule))
    return out


def rule_exprs():
    out = []
    for path, _, rule in load_rules():
        name = rule.get("record") or rule.get("alert")
        out.append((f"{path} {name}", rule["expr"].strip()))
    return out


def substitute_grafana_vars(expr, values=None):
    values = dict(DEFAULT_GRAFANA_VARS, **(values or {}))

    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def promtool_check_exprs(exprs):
    """Runs `promtool check rules` on a rules file with each expr as a
    recording rule; returns (ok, output)."""
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "exprs.yml")
        with open(path, "w") as f:
            # JSON is YAML: no quoting pitfalls for the expressions.
            json.dump({"groups": [{"name": "check", "rules": rules}]}, f)
        proc = subprocess.run([PROMTOOL, "check", "rules", path],
                              capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


def exported_metric_names():
    """Names SchedulerMetrics registers (read from its source), with the
    _bucket/_sum/_count series of histograms."""
    with open(os.path.join(ROOT, "services", "metrics", "scheduler_metrics.cc")) as f:
        src = f.read()
    names = set(re.findall(r'Family\(\s*r,\s*"(greenlight_[a-z0-9_]+)"', src))
    for h in re.findall(r'HistogramFamily\(\s*r,\s*"(greenlight_[a-z0-9_]+)"', src):
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    return names


def metric_names_in(expr):
    """greenlight metric and recording-rule names an expression reads."""
    return set(re.findall(r"\b(greenlight[_:][A-Za-z0-9_:]*)", expr))
