"""clients/python/examples/train_checkpoint.py: stopped with SIGTERM mid-way,
it checkpoints and exits 143; run again with GREENLIGHT_RESUME=1 it goes on
from that checkpoint and ends with the weights of a run that never stopped."""

import json
import os
import select
import signal
import subprocess
import time

import pytest

from conftest import CLIENT_DIR

PY = "/usr/bin/python3"
SCRIPT = os.path.join(CLIENT_DIR, "examples", "train_checkpoint.py")
ARGS = ["--steps", "40", "--checkpoint-every", "5"]


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("GREENLIGHT_")}
    e.update(extra)
    return e


def run(cwd, *args, **extra_env):
    return subprocess.run([PY, SCRIPT, *ARGS, *args], cwd=cwd, env=env(**extra_env), capture_output=True, text=True, timeout=60)


def checkpoint(d):
    with open(os.path.join(d, "checkpoint.json")) as f:
        return json.load(f)


def start_and_stop_after(cwd, step, sig=signal.SIGTERM, **extra_env):
    """Starts a slow run, waits for its checkpoint at ``step``, sends ``sig``;
    returns (exit code, its output)."""
    proc = subprocess.Popen(
        [PY, SCRIPT, *ARGS, "--step-time", "0.05"],
        cwd=cwd,
        env=env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if f"checkpoint: step {step} " in line:
                proc.send_signal(sig)
                break
        else:
            pytest.fail("no checkpoint line in time:\n" + "".join(lines))
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(lines) + out


def test_sigterm_checkpoints_and_resume_continues_from_it(tmp_path):
    straight = tmp_path / "straight"
    straight.mkdir()
    done = run(straight, "--step-time", "0", GREENLIGHT_JOB_ID="j-straight")
    assert done.returncode == 0, done.stderr
    final = checkpoint(straight)
    assert final["step"] == 40 and final["done"] is True

    work = tmp_path / "work"
    work.mkdir()
    code, out = start_and_stop_after(work, 10, GREENLIGHT_JOB_ID="j-0000000000000042")
    assert code == 143, out  # 128 + SIGTERM: stopped, not done
    stopped = checkpoint(work)
    assert 10 <= stopped["step"] < 40 and stopped["done"] is False
    assert stopped["job_id"] == "j-0000000000000042"
    assert f"stopped by SIGTERM at step {stopped['step']}/40" in out
    assert "[j-0000000000000042] step 1/40 loss" in out  # progress lines name the job
    assert [p.name for p in work.iterdir()] == ["checkpoint.json"]  # no temporary files left

    resumed = run(work, "--step-time", "0", GREENLIGHT_JOB_ID="j-0000000000000042", GREENLIGHT_RESUME="1")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    lines = resumed.stdout.splitlines()
    assert f"resumed from {work / 'checkpoint.json'}: step {stopped['step']} " in lines[0]
    assert "written by job j-0000000000000042" in lines[0]
    steps = [int(line.split("step ")[1].split("/")[0]) for line in lines if "] step " in line]
    assert steps[0] == stopped["step"] + 1 and steps[-1] == 40  # continues, does not restart
    after = checkpoint(work)
    assert after["done"] is True and after["step"] == 40
    # Each step's batch depends only on (seed, step): same path as a run that never stopped.
    assert (after["w"], after["b"], after["loss"]) == (final["w"], final["b"], final["loss"])


def test_sigint_exits_130_after_a_checkpoint(tmp_path):
    code, out = start_and_stop_after(tmp_path, 5, signal.SIGINT)
    assert code == 130, out
    assert checkpoint(tmp_path)["step"] >= 5 and "stopped by SIGINT" in out
    assert "[local] " in out  # no GREENLIGHT_JOB_ID outside greenlight


def test_without_resume_it_starts_over(tmp_path):
    code, _ = start_and_stop_after(tmp_path, 10)
    assert code == 143
    fresh = run(tmp_path, "--step-time", "0")
    assert fresh.returncode == 0
    assert "resumed" not in fresh.stdout and "] step 1/40 " in fresh.stdout


def test_resume_without_a_checkpoint_starts_from_zero(tmp_path):
    proc = run(tmp_path, "--step-time", "0", GREENLIGHT_RESUME="1")
    assert proc.returncode == 0
    assert "asked to resume but there is no checkpoint" in proc.stdout and "] step 1/40 " in proc.stdout


def test_resume_from_a_broken_checkpoint_exits_1(tmp_path):
    (tmp_path / "checkpoint.json").write_text('{"step": "ten"}')
    proc = run(tmp_path, GREENLIGHT_RESUME="1")
    assert proc.returncode == 1 and "cannot resume from" in proc.stderr and "step" in proc.stderr


def test_resume_of_a_finished_run_does_nothing_more(tmp_path):
    assert run(tmp_path, "--step-time", "0").returncode == 0
    again = run(tmp_path, "--step-time", "0", GREENLIGHT_RESUME="1")
    assert again.returncode == 0 and "step 40 " in again.stdout.splitlines()[0]
    assert "] step " not in again.stdout and checkpoint(tmp_path)["step"] == 40
