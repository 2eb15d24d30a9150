"""Bearer tokens and TLS from the client and CLI, against a greenlightd running
with auth.mode=token and a TLS certificate (made here with openssl)."""

import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

import greenlight
from conftest import ROOT, demo_config, greenlightd_binary
from greenlight.v1 import admin_pb2, admin_pb2_grpc
from server import Greenlightd

pytestmark = pytest.mark.live

PY = "/usr/bin/python3"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=greenlight-test-ca", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext", cwd=d)


def secure_config(d, admin_file):
    """demo.yaml with token auth and TLS; relative data paths made absolute."""
    src = demo_config()
    base = os.path.dirname(src)
    text = open(src, encoding="utf-8").read()

    def absolutize(m):
        return m.group(1) + os.path.normpath(os.path.join(base, m.group(2)))

    text = re.sub(r"(file: |host_file: |path: |gpu_power: |gpu_overrides: |region_carbon: |region_zones: )(\.\.?/[^\s,}]+)", absolutize, text)
    text = re.sub(r"(?m)^(\s*)mode: open\b.*$", r"\1mode: token", text)
    text = re.sub(r'(?m)^(\s*)admin_token_file: "".*$', rf'\1admin_token_file: "{admin_file}"', text)
    text = re.sub(r'(?m)^(\s*)cert_file: "".*$', rf'\1cert_file: "{d}/server.pem"', text)
    text = re.sub(r'(?m)^(\s*)key_file: "".*$', rf'\1key_file: "{d}/server.key"', text)
    assert "mode: token" in text and "server.pem" in text and "server.key" in text
    path = os.path.join(d, "secure.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    binary = greenlightd_binary()
    d = str(tmp_path_factory.mktemp("secure"))
    make_certs(d)
    admin_secret = uuid.uuid4().hex + uuid.uuid4().hex
    admin_file = os.path.join(d, "admin.token")
    with open(admin_file, "w") as f:
        f.write(admin_secret + "\n")
    ca = os.path.join(d, "ca.pem")
    srv = Greenlightd(binary, secure_config(d, admin_file), d, ["--time_scale=1"], ca_pem=open(ca, "rb").read())
    try:
        srv.start()
        srv.ca = ca
        srv.admin_secret = admin_secret
        srv.admin_file = admin_file
        yield srv
    finally:
        srv.stop()


def create_token(srv, team):
    with greenlight.Client(srv.target, token=srv.admin_secret, tls=srv.ca) as admin:
        stub = admin_pb2_grpc.AdminStub(admin.channel)
        resp = stub.CreateToken(
            admin_pb2.CreateTokenRequest(team=team, description="python client test"),
            metadata=[("authorization", f"Bearer {srv.admin_secret}")],
            timeout=10,
        )
    return resp.secret


def test_without_token_is_unauthenticated(secure):
    with greenlight.Client(secure.target, tls=secure.ca) as gl:
        with pytest.raises(greenlight.Unauthenticated) as e:
            gl.list_teams()
    assert isinstance(e.value, greenlight.PermissionDenied)
    with greenlight.Client(secure.target, token="not-a-real-secret-0123456789", tls=secure.ca) as gl:
        with pytest.raises(greenlight.Unauthenticated):
            gl.list_teams()


def test_plaintext_client_cannot_talk_to_a_tls_server(secure):
    with greenlight.Client(secure.target, token=secure.admin_secret, tls=False, timeout=3,
                           retry=greenlight.RetryPolicy(max_attempts=2, initial_backoff=0.05)) as gl:
        with pytest.raises(greenlight.Unavailable):
            gl.list_teams()


def test_team_token_acts_for_its_team_only(secure):
    with greenlight.Client(secure.target, token=secure.admin_secret, tls=secure.ca) as admin:
        team = f"py-auth-{uuid.uuid4().hex[:6]}"
        admin.set_team(team, monthly_cost_budget_usd=10_000)
        other_job = admin.submit(team="ml-research", gpus=1, gpu_hours=1)
    secret = create_token(secure, team)
    with greenlight.Client(secure.target, token=secret, tls=greenlight.TLS(ca=secure.ca)) as gl:
        job = gl.submit(team=team, gpus=1, gpu_hours=1)
        assert gl.get(job.id).id == job.id
        assert [j.id for j in gl.list()] == [job.id]  # only its own team's jobs
        assert gl.usage(team).team == team
        with pytest.raises(greenlight.PermissionDenied):
            gl.submit(team="ml-research", gpus=1, gpu_hours=1)
        with pytest.raises(greenlight.NotFound):  # no existence leak
            gl.get(other_job.id)
        with pytest.raises(greenlight.NotFound):
            gl.cancel(other_job.id)
        assert gl.cancel(job.id).state is greenlight.JobState.CANCELLED


def test_token_from_environment_and_file(secure, monkeypatch):
    monkeypatch.setenv("GREENLIGHT_TOKEN", secure.admin_secret)
    monkeypatch.setenv("GREENLIGHT_TLS_CA", secure.ca)
    with greenlight.Client(secure.target) as gl:
        assert "ml-research" in {t.name for t in gl.list_teams()}
    monkeypatch.delenv("GREENLIGHT_TOKEN")
    monkeypatch.setenv("GREENLIGHT_TOKEN_FILE", secure.admin_file)
    with greenlight.Client(secure.target) as gl:
        assert gl.get_team("ml-research").name == "ml-research"


def test_cli_token_flag_env_file_and_tls_ca(secure, client_env):
    def run(*args, env=None):
        return subprocess.run(
            [PY, "-m", "greenlight", "--target", secure.target, *args],
            env=env or client_env, capture_output=True, text=True, timeout=120,
        )

    p = run("--tls-ca", secure.ca, "teams")
    assert p.returncode == 7 and "Unauthenticated" in p.stderr and "--token" in p.stderr
    p = run("--tls-ca", secure.ca, "--token", secure.admin_secret, "teams")
    assert p.returncode == 0 and "ml-research" in p.stdout
    p = run("teams", "--tls-ca", secure.ca, "--token-file", secure.admin_file, "-o", "json")
    assert p.returncode == 0 and "ml-research" in {t["name"] for t in json.loads(p.stdout)}
    env = dict(client_env, GREENLIGHT_TOKEN=secure.admin_secret, GREENLIGHT_TLS_CA=secure.ca)
    p = run("usage", "ml-research", env=env)
    assert p.returncode == 0 and "BUDGET" in p.stdout
    p = run("--token", secure.admin_secret, "--timeout", "3", "teams")  # no TLS
    assert p.returncode == 9
