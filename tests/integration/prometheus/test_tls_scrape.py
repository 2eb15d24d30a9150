"""Debian's Prometheus scraping greenlightd's /metrics over HTTPS with mutual
TLS (server.metrics_tls via --metrics_tls, a client CA): with the CA and a
client certificate in its tls_config the target is up and greenlight_ series
arrive; without the client certificate, or over plain http, it is down.
Certificates are made by the test with the openssl CLI.

Needs GREENLIGHT_BIN (the build tree); run by ctest as `prometheus_tls_scrape`."""

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.parse
import urllib.request

import pytest

import promql_sources as src
from procs import free_port, http_get, stop_all, wait_until

BIN = os.environ.get("GREENLIGHT_BIN", os.path.join(src.ROOT, "build"))
GREENLIGHTD = os.path.join(BIN, "services", "scheduler", "greenlightd")
PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")
DEMO_CONFIG = os.path.join(src.ROOT, "deploy", "config", "demo.yaml")


def openssl(tmp, *args):
    subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True)


def make_pki(tmp):
    """ca.pem (server CA), server.pem/key (localhost, 127.0.0.1), clientca.pem,
    client.pem/key signed by it."""
    for ca in ["ca", "clientca"]:
        openssl(tmp, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN={ca}")
    for name, ca, ext in [("server", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                          ("client", "clientca", "extendedKeyUsage=clientAuth\n")]:
        with open(os.path.join(tmp, f"{name}.ext"), "w") as f:
            f.write(ext)
        openssl(tmp, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        openssl(tmp, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-set_serial", "42", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def stack():
    if not os.path.exists(GREENLIGHTD):
        pytest.fail(f"{GREENLIGHTD} not built (set GREENLIGHT_BIN to the build tree)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    tmp = tempfile.mkdtemp(prefix="gl-prom-tls-")
    procs = []
    try:
        make_pki(tmp)
        pem = lambda name: os.path.join(tmp, name)  # noqa: E731
        grpc_port, metrics_port, prom_port = free_port(), free_port(), free_port()
        gl_log = os.path.join(tmp, "greenlightd.log")
        gl = subprocess.Popen(
            [GREENLIGHTD, "--config", DEMO_CONFIG, "--grpc_address", f"127.0.0.1:{grpc_port}",
             "--metrics_address", f"127.0.0.1:{metrics_port}", "--metrics_tls",
             f"--tls_cert_file={pem('server.pem')}", f"--tls_key_file={pem('server.key')}",
             f"--tls_client_ca_file={pem('clientca.pem')}", "--store", pem("gl.db")],
            stdout=open(gl_log, "w"), stderr=subprocess.STDOUT, cwd=src.ROOT)
        procs.append(("greenlightd", gl, gl_log))

        # Ready when a scrape with the client certificate answers (Python's ssl).
        ctx = ssl.create_default_context(cafile=pem("ca.pem"))
        ctx.load_cert_chain(pem("client.pem"), pem("client.key"))

        def scrape():
            with urllib.request.urlopen(f"https://127.0.0.1:{metrics_port}/metrics", context=ctx, timeout=5) as r:
                return r.status == 200 and "greenlight_build_info" in r.read().decode()
        wait_until("greenlightd /metrics over mutual TLS", scrape, 60, procs)

        target = [f"localhost:{metrics_port}"]
        tls_ca = {"ca_file": pem("ca.pem"), "server_name": "localhost"}
        prom_dir = os.path.join(tmp, "prometheus")
        os.makedirs(prom_dir)
        prom_config = os.path.join(prom_dir, "prometheus.yml")
        with open(prom_config, "w") as f:
            json.dump({  # JSON is YAML
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [
                    {"job_name": "mtls", "scheme": "https", "static_configs": [{"targets": target}],
                     "tls_config": dict(tls_ca, cert_file=pem("client.pem"), key_file=pem("client.key"))},
                    {"job_name": "no_client_cert", "scheme": "https", "static_configs": [{"targets": target}],
                     "tls_config": tls_ca},
                    {"job_name": "plain", "scheme": "http", "static_configs": [{"targets": target}]},
                ],
            }, f)
        prom_log = os.path.join(tmp, "prometheus.log")
        prom = subprocess.Popen(
            [PROMETHEUS, f"--config.file={prom_config}", f"--storage.tsdb.path={os.path.join(prom_dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=open(prom_log, "w"), stderr=subprocess.STDOUT, cwd=prom_dir)
        procs.append(("prometheus", prom, prom_log))
        api = f"http://127.0.0.1:{prom_port}"
        wait_until("prometheus ready", lambda: http_get(f"{api}/-/ready")[0] == 200, 60, procs)
        yield {"api": api, "procs": procs, "metrics_port": metrics_port}
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def targets(stack):
    """job -> (health, lastError) of the active targets."""
    _, body = http_get(f"{stack['api']}/api/v1/targets?state=active")
    return {t["labels"]["job"]: (t["health"], t.get("lastError", "")) for t in json.loads(body)["data"]["activeTargets"]}


def query(stack, expr):
    _, body = http_get(f"{stack['api']}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    doc = json.loads(body)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_prometheus_scrapes_over_mutual_tls_with_the_ca_and_a_client_certificate(stack):
    wait_until("target mtls up", lambda: targets(stack).get("mtls", ("", ""))[0] == "up", 60, stack["procs"])
    series = wait_until("greenlight_build_info scraped over mTLS",
                        lambda: query(stack, 'greenlight_build_info{job="mtls"}'), 30, stack["procs"])
    assert series[0]["value"][1] == "1"
    assert query(stack, 'count({job="mtls", __name__=~"greenlight_.+"})'), "greenlight_ series arrive"


def scraped(stack, jobs):
    """targets() once every job in `jobs` has been scraped at least once."""
    t = targets(stack)
    return t if all(t.get(j, ("unknown", ""))[0] != "unknown" for j in jobs) else None


def test_prometheus_without_a_client_certificate_or_over_http_gets_nothing(stack):
    health = wait_until("targets no_client_cert and plain scraped",
                        lambda: scraped(stack, ["no_client_cert", "plain"]), 60, stack["procs"])
    assert health["no_client_cert"][0] == "down", health
    assert health["plain"][0] == "down", health
    assert not query(stack, 'greenlight_build_info{job=~"no_client_cert|plain"}')
