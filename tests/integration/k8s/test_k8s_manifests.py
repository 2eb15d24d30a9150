"""deploy/k8s as Kubernetes would receive it: `kubectl kustomize deploy/k8s`
rendered offline, parsed, and cross-checked against the greenlightd config in
its ConfigMap (ports, paths, names), the webhook contract of services/webhook,
the prometheus rules and grafana dashboard sources, and deploy/docker."""

import glob
import json
import os
import posixpath
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.environ.get("GREENLIGHT_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
K8S = os.path.join(ROOT, "deploy", "k8s")
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture(scope="module")
def objects():
    out = subprocess.run([KUBECTL, "kustomize", K8S], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize deploy/k8s failed:\n{out.stderr}"
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs, "rendered nothing"
    return docs


def find(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert found, f"no {kind} {name or ''} rendered"
    return found


def one(objects, kind, name=None):
    found = find(objects, kind, name)
    assert len(found) == 1, f"{len(found)} {kind} {name}"
    return found[0]


@pytest.fixture(scope="module")
def config(objects):
    cm = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("greenlight-config")]
    assert len(cm) == 1, "exactly one greenlight-config ConfigMap"
    text = cm[0]["data"]["greenlightd.yaml"]
    with open(os.path.join(K8S, "config", "greenlightd.yaml")) as f:
        assert text == f.read(), "ConfigMap must carry config/greenlightd.yaml verbatim"
    return {"name": cm[0]["metadata"]["name"], "namespace": cm[0]["metadata"]["namespace"],
            "yaml": yaml.safe_load(text)}


@pytest.fixture(scope="module")
def deployment(objects):
    return one(objects, "Deployment", "greenlight")


@pytest.fixture(scope="module")
def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def port_of(address):
    host, _, port = address.rpartition(":")
    assert port.isdigit(), address
    return int(port)


def container_port(container, name):
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert name in ports, f"container port {name} missing: {ports}"
    return ports[name]


def service_with_port(objects, port_name):
    svcs = [s for s in find(objects, "Service") if any(p["name"] == port_name for p in s["spec"]["ports"])]
    assert len(svcs) == 1, f"one Service should expose port {port_name}"
    return svcs[0], next(p for p in svcs[0]["spec"]["ports"] if p["name"] == port_name)


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def test_renders_every_required_object(objects):
    kinds = {o["kind"] for o in objects}
    for kind in ["Namespace", "ServiceAccount", "Deployment", "Service", "ConfigMap", "PersistentVolumeClaim",
                 "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ServiceMonitor",
                 "PrometheusRule", "Certificate", "Issuer"]:
        assert kind in kinds, kind
    cluster_scoped = {"Namespace", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
    for o in objects:
        if o["kind"] not in cluster_scoped:
            assert o["metadata"].get("namespace"), f"{o['kind']} {o['metadata']['name']} has no namespace"
        assert o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "greenlight", o["metadata"]["name"]
    one(objects, "Namespace", "greenlight-system")


def test_config_is_production_shaped(config):
    c = config["yaml"]
    assert c["auth"]["mode"] == "token"
    assert c["auth"]["admin_token_file"]
    assert c["tls"]["cert_file"] and c["tls"]["key_file"], "TLS must be on"
    assert c["clock"]["time_scale"] == 1
    for key in ["grpc_address", "metrics_address", "webhook_address"]:
        assert c["server"][key].startswith("0.0.0.0:"), f"{key} must listen on the pod IP"


def test_ports_agree_between_config_container_and_services(config, container, objects):
    server = config["yaml"]["server"]
    for port_name, key in [("grpc", "grpc_address"), ("metrics", "metrics_address"), ("webhook", "webhook_address")]:
        want = port_of(server[key])
        assert container_port(container, port_name) == want, port_name
        svc, port = service_with_port(objects, port_name)
        assert port["targetPort"] in (port_name, want), port_name
        assert svc["metadata"]["namespace"] == "greenlight-system"
        pod_labels = one(objects, "Deployment", "greenlight")["spec"]["template"]["metadata"]["labels"]
        assert selects(svc["spec"]["selector"], pod_labels), f"Service {svc['metadata']['name']} selects no pod"
    assert service_with_port(objects, "grpc")[1]["port"] == 50051
    assert service_with_port(objects, "metrics")[1]["port"] == 9464
    assert service_with_port(objects, "webhook")[1]["port"] == 8443


def test_deployment_runs_locked_down_with_probes_and_resources(deployment, container, config):
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 1, "the store has one writer"
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert selects(deployment["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    for kind in ["requests", "limits"]:
        assert container["resources"][kind]["cpu"] and container["resources"][kind]["memory"], kind
    port_names = {p["name"] for p in container["ports"]}
    tls_on = bool(config["yaml"]["tls"]["cert_file"])
    grpc_port = port_of(config["yaml"]["server"]["grpc_address"])
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
        assert probe in container, probe
        p = container[probe]
        handler = next(k for k in ["grpc", "httpGet", "tcpSocket", "exec"] if k in p)
        if handler in ("httpGet", "tcpSocket"):
            assert p[handler]["port"] in port_names, f"{probe} targets an undeclared port"
        if handler == "grpc" and tls_on:
            # kubelet's gRPC probe is plaintext: it would fail against the TLS port.
            assert p["grpc"]["port"] != grpc_port, f"{probe}: native gRPC probe on the TLS gRPC port"
        if handler == "httpGet" and p[handler]["port"] == "webhook":
            assert p["httpGet"]["scheme"] == "HTTPS" and p["httpGet"]["path"] == "/healthz"


def test_volumes_put_config_tls_token_and_store_where_the_config_says(deployment, container, config, objects):
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    c = config["yaml"]

    def volume_at(directory):
        assert directory in mounts, f"nothing mounted at {directory}: {sorted(mounts)}"
        return volumes[mounts[directory]["name"]]

    # --config points at the ConfigMap's file.
    args = [a for a in container["args"] if a.startswith("--config=")]
    assert len(args) == 1
    config_path = args[0].split("=", 1)[1]
    v = volume_at(posixpath.dirname(config_path))
    assert v["configMap"]["name"] == config["name"], "kustomize hash suffix must be applied"
    assert posixpath.basename(config_path) == "greenlightd.yaml"

    # The SQLite store on the PVC, writable.
    store_dir = posixpath.dirname(c["store"]["path"])
    v = volume_at(store_dir)
    assert not mounts[store_dir].get("readOnly", False)
    pvc = one(objects, "PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["metadata"]["namespace"] == deployment["metadata"]["namespace"]

    # TLS from the cert-manager Secret, mounted whole (subPath would stop rotation).
    tls_dir = posixpath.dirname(c["tls"]["cert_file"])
    assert posixpath.dirname(c["tls"]["key_file"]) == tls_dir
    v = volume_at(tls_dir)
    assert "subPath" not in mounts[tls_dir]
    cert = one(objects, "Certificate", "greenlight-serving")
    assert v["secret"]["secretName"] == cert["spec"]["secretName"]
    assert {posixpath.basename(c["tls"]["cert_file"]), posixpath.basename(c["tls"]["key_file"])} == {"tls.crt", "tls.key"}

    v = volume_at(posixpath.dirname(c["auth"]["admin_token_file"]))
    assert v["secret"]["secretName"] == "greenlight-admin-token"

    # Read-only root: SQLite's temp files need a writable /tmp.
    assert volume_at("/tmp")["emptyDir"] is not None


def test_webhook_configurations_call_the_webhook_service(objects, config):
    svc, port = service_with_port(objects, "webhook")
    cert = one(objects, "Certificate", "greenlight-serving")
    want_dns = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
    assert want_dns in cert["spec"]["dnsNames"]
    api_svc, _ = service_with_port(objects, "grpc")
    assert f"{api_svc['metadata']['name']}.{api_svc['metadata']['namespace']}.svc" in cert["spec"]["dnsNames"]
    team_ns = [n for n in find(objects, "Namespace") if n["metadata"]["name"] != "greenlight-system"]
    system_ns = one(objects, "Namespace", "greenlight-system")
    for kind, path, ops in [("MutatingWebhookConfiguration", "/mutate", {"CREATE", "UPDATE"}),
                            ("ValidatingWebhookConfiguration", "/validate", {"CREATE", "UPDATE", "DELETE"})]:
        cfg = one(objects, kind)
        assert cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
            f"{cert['metadata']['namespace']}/{cert['metadata']['name']}"
        assert len(cfg["webhooks"]) == 1
        hook = cfg["webhooks"][0]
        ref = hook["clientConfig"]["service"]
        assert (ref["namespace"], ref["name"], ref["path"], ref["port"]) == \
            (svc["metadata"]["namespace"], svc["metadata"]["name"], path, port["port"]), kind
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["sideEffects"] == "NoneOnDryRun"
        assert hook["failurePolicy"] in ("Fail", "Ignore")
        assert hook["failurePolicy"] == "Fail", "documented choice: budgets are not skipped when greenlight is down"
        assert 1 <= hook["timeoutSeconds"] <= 30
        rules = {(tuple(r["apiGroups"]), tuple(r["apiVersions"]), tuple(r["resources"])): set(r["operations"])
                 for r in hook["rules"]}
        assert rules == {((("",)), ("v1",), ("pods",)): ops, (("batch",), ("v1",), ("jobs",)): ops}, kind
        selector = hook["namespaceSelector"]["matchLabels"]
        assert not selects(selector, system_ns["metadata"].get("labels", {})), "greenlight must not gate itself"
        assert team_ns and all(selects(selector, n["metadata"]["labels"]) for n in team_ns), \
            "the example team namespace must be opted in"


def test_example_team_namespace_is_a_configured_team(objects, config):
    teams = {t["name"] for t in config["yaml"]["teams"]}
    assert config["yaml"]["webhook"]["team_label"] == "", "namespace = team in this base"
    for ns in find(objects, "Namespace"):
        if ns["metadata"]["name"] != "greenlight-system":
            assert ns["metadata"]["name"] in teams, ns["metadata"]["name"]


def test_data_paths_in_the_config_exist_in_the_image_layout(config):
    """The Dockerfile copies data/ to /usr/share/greenlight/data."""
    prefix = "/usr/share/greenlight/data/"
    d = config["yaml"]["data"]
    paths = [c["file"] for c in d["catalogs"]] + [c["host_file"] for c in d["catalogs"] if c.get("host_file")]
    paths += [d[k] for k in ["gpu_power", "gpu_overrides", "region_carbon", "region_zones"]]
    paths += [s["file"] for s in d["carbon_series"]]
    for p in paths:
        assert p.startswith(prefix), p
        assert os.path.isfile(os.path.join(ROOT, "data", p[len(prefix):])), f"{p}: no such file in data/"


def test_service_monitor_scrapes_the_metrics_port(objects):
    sm = one(objects, "ServiceMonitor", "greenlight")
    svc, port = service_with_port(objects, "metrics")
    assert selects(sm["spec"]["selector"]["matchLabels"], svc["metadata"]["labels"])
    assert svc["metadata"]["namespace"] in sm["spec"]["namespaceSelector"]["matchNames"]
    assert [e["port"] for e in sm["spec"]["endpoints"]] == [port["name"]]
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    # Only one Service matches, so the webhook Service is not scraped.
    matching = [s for s in find(objects, "Service") if selects(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    assert matching == [svc]


def test_metrics_are_scraped_over_https_verifying_the_serving_certificate(objects, config):
    c = config["yaml"]
    assert c["server"].get("metrics_tls") is True, "server.metrics_tls: /metrics must be HTTPS in deploy/k8s"
    assert c["tls"]["cert_file"] and c["tls"]["key_file"], "metrics_tls serves tls.cert_file"
    svc, port = service_with_port(objects, "metrics")
    assert port.get("appProtocol") == "https"
    sm = one(objects, "ServiceMonitor", "greenlight")
    endpoint = sm["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    tls = endpoint["tlsConfig"]
    assert not tls.get("insecureSkipVerify", False), "the scrape must verify the certificate"
    # Prometheus dials the pod IP: serverName must be a DNS name of the
    # certificate, the metrics Service's own.
    cert = one(objects, "Certificate", "greenlight-serving")
    assert tls["serverName"] in cert["spec"]["dnsNames"]
    assert tls["serverName"].startswith(f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc")
    # The CA comes from the Secret cert-manager writes (and the pod mounts),
    # in the ServiceMonitor's namespace, where the operator can read it.
    assert tls["ca"]["secret"] == {"name": cert["spec"]["secretName"], "key": "ca.crt"}
    assert sm["metadata"]["namespace"] == cert["metadata"]["namespace"]
    if c["tls"].get("client_ca_file"):
        # Mutual TLS: the scraper must present a client certificate.
        assert tls.get("cert", {}).get("secret") and tls.get("keySecret"), \
            "tls.client_ca_file is set: the ServiceMonitor needs a client certificate"


def test_prometheus_rule_matches_deploy_prometheus(objects):
    files = sorted(glob.glob(os.path.join(ROOT, "deploy", "prometheus", "rules", "*.yml")))
    assert files, "deploy/prometheus/rules/*.yml missing"
    groups = []
    for path in files:
        with open(path) as f:
            groups.extend(yaml.safe_load(f)["groups"])
    rule = one(objects, "PrometheusRule", "greenlight")
    assert rule["spec"]["groups"] == groups, \
        "deploy/k8s/monitoring/prometheusrule.yaml is stale: run deploy/k8s/sync-copies.sh"
    for g in rule["spec"]["groups"]:
        for r in g["rules"]:
            assert ("record" in r) != ("alert" in r) and r["expr"], r


def test_grafana_dashboard_matches_deploy_grafana(objects):
    src = os.path.join(ROOT, "deploy", "grafana", "dashboards", "greenlight.json")
    with open(src) as f:
        want = f.read()
    cm = one(objects, "ConfigMap", "greenlight-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"]["greenlight.json"] == want, \
        "deploy/k8s/monitoring/grafana/greenlight.json is stale: run deploy/k8s/sync-copies.sh"
    assert json.loads(cm["data"]["greenlight.json"])["uid"]


def test_dockerfile_is_multistage_debian12_nonroot_and_mirrors_the_readme(deployment):
    path = os.path.join(ROOT, "deploy", "docker", "Dockerfile")
    with open(path) as f:
        text = f.read()
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    froms = [l for l in lines if l.upper().startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage"
    assert all(re.match(r"FROM debian:12(-slim)?(\s|$)", l) for l in froms), froms
    assert "scripts/install-deps.sh" in text, "build deps come from the same script as the README"
    assert re.search(r"cmake -S \. -B \S+ .*-DCMAKE_BUILD_TYPE=Release", text)
    assert re.search(r"--target greenlightd", text)
    users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0", "0:0"), "runs as non-root"
    uid = deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert users[-1].split(":")[0] == str(uid), "Deployment runAsUser matches the image user"
    assert "/usr/share/greenlight/data" in text
    assert re.search(r'ENTRYPOINT \["/usr/local/bin/greenlightd"\]', text)
