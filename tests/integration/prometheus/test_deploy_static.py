"""Static checks of deploy/prometheus and deploy/grafana: every alert has
promtool unit tests firing and not firing, the dashboard uses its variables
and only valid PromQL over metrics greenlightd actually exports."""

import os
import re

import yaml

import promql_sources as src


def _alert_tests():
    """{alertname: [exp_alerts, ...]} over deploy/prometheus/tests/*.yml."""
    tests_dir = os.path.join(src.PROMETHEUS_DIR, "tests")
    seen = {}
    for name in sorted(os.listdir(tests_dir)):
        if not name.endswith(".yml"):
            continue
        with open(os.path.join(tests_dir, name)) as f:
            doc = yaml.safe_load(f)
        for test in doc.get("tests", []):
            for t in test.get("alert_rule_test", []) or []:
                seen.setdefault(t["alertname"], []).append(t.get("exp_alerts") or [])
    return seen


def test_every_alert_has_unit_tests_showing_it_firing_and_not_firing():
    alerts = [r["alert"] for _, _, r in src.load_rules() if "alert" in r]
    assert len(alerts) >= 8
    tests = _alert_tests()
    for alert in alerts:
        cases = tests.get(alert, [])
        assert any(c for c in cases), f"{alert}: no promtool test where it fires"
        assert any(not c for c in cases), f"{alert}: no promtool test where it does not fire"
    unknown = set(tests) - set(alerts)
    assert not unknown, f"tests for alerts that do not exist: {unknown}"


def test_alerts_have_severity_and_summary():
    for path, _, rule in src.load_rules():
        if "alert" in rule:
            assert rule.get("labels", {}).get("severity") in ("warning", "critical"), rule["alert"]
            assert rule.get("annotations", {}).get("summary"), rule["alert"]


def test_budget_ratios_exclude_unlimited_budgets():
    # A budget of 0 means unlimited: dividing by it must not produce alerts.
    for _, _, rule in src.load_rules():
        if rule.get("record", "").endswith("budget_used:ratio"):
            assert re.search(r"budget_(usd|kg)\s*>\s*0\)", rule["expr"]), rule["record"]


def test_dashboard_declares_datasource_team_and_region_variables():
    variables = {v["name"]: v for v in src.load_dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("team", "region"):
        v = variables[name]
        assert v["type"] == "query"
        assert v["datasource"]["uid"] == "${datasource}"
        assert v["multi"] and v["includeAll"] and v["allValue"] == ".*"
        assert f", {name})" in v["definition"]


def test_every_panel_and_target_uses_the_datasource_variable():
    panels = [p for p in src.dashboard_panels(src.load_dashboard()) if p["type"] != "row"]
    assert len(panels) >= 15
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t.get("datasource", p["datasource"])["uid"] == "${datasource}", p["title"]


def test_panel_ids_are_unique():
    ids = [p["id"] for p in src.dashboard_panels(src.load_dashboard())]
    assert len(ids) == len(set(ids))


def test_dashboard_covers_the_issue_list():
    exprs = " ".join(e for _, e in src.dashboard_exprs())
    for needed in [
        "greenlight_team_cost_remaining_usd", "greenlight_team_carbon_remaining_kg",
        "greenlight_team_cost_burn_rate_usd_per_hour",
        "greenlight_team_carbon_burn_rate_grams_per_hour",
        "greenlight:team_cost_projected_period_usd", "greenlight:team_carbon_projected_period_kg",
        "greenlight_team_running_gpus", "greenlight_team_gpu_quota",
        "greenlight_zone_carbon_intensity_grams_per_kwh",
        "greenlight_baseline_carbon_kg_total", "greenlight_baseline_cost_usd_total",
        "histogram_quantile(0.99, sum by (le) (rate(greenlight_placement_duration_seconds_bucket",
        "greenlight_rejections_total",
    ]:
        assert needed in exprs, needed


def test_team_scoped_queries_filter_on_the_team_variable():
    for where, expr in src.dashboard_exprs():
        if "greenlight_team_" in expr or "greenlight:team_" in expr:
            assert 'team=~"$team"' in expr, where
        if "greenlight_region_" in expr:
            assert 'region=~"$region"' in expr, where


def test_every_dashboard_expr_is_valid_promql():
    exprs = [(w, src.substitute_grafana_vars(e)) for w, e in src.dashboard_exprs()]
    ok, out = src.promtool_check_exprs(exprs)
    assert ok, out
    assert f"SUCCESS: {len(exprs)} rules found" in out, out


def test_promql_check_catches_a_syntax_error():
    # The check above must be able to fail.
    ok, out = src.promtool_check_exprs([("bad", "sum by (team (greenlight_jobs)")])
    assert not ok, out


def test_every_metric_read_by_dashboard_and_rules_is_exported_or_recorded():
    exported = src.exported_metric_names()
    assert "greenlight_team_cost_spent_usd" in exported
    assert "greenlight_placement_duration_seconds_bucket" in exported
    recorded = {r["record"] for _, _, r in src.load_rules() if "record" in r}
    for where, expr in src.dashboard_exprs() + src.rule_exprs():
        for name in src.metric_names_in(expr):
            assert name in exported or name in recorded, f"{where}: {name} is not exported"
    variables = src.load_dashboard()["templating"]["list"]
    for v in variables:
        for name in src.metric_names_in(v.get("definition", "")):
            assert name in exported, f"variable {v['name']}: {name}"


def test_provisioning_loads_the_dashboard_and_a_prometheus_datasource():
    with open(os.path.join(src.GRAFANA_DIR, "provisioning", "dashboards", "greenlight.yml")) as f:
        dashboards = yaml.safe_load(f)
    assert dashboards["apiVersion"] == 1
    (provider,) = dashboards["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
    with open(os.path.join(src.GRAFANA_DIR, "provisioning", "datasources", "greenlight.yml")) as f:
        datasources = yaml.safe_load(f)
    assert datasources["apiVersion"] == 1
    assert any(d["type"] == "prometheus" for d in datasources["datasources"])
    dash = src.load_dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
