#!/usr/bin/env python3
"""A tiny CPU-only stand-in for a training script that checkpoints and resumes.

    python3 train_checkpoint.py --steps 200 --checkpoint-every 10
    GREENLIGHT_RESUME=1 python3 train_checkpoint.py --steps 200   # goes on from checkpoint.json

What a greenlight job on an agent pool looks like, in pure Python (no torch,
no GPU): it fits y = 3x + 2 by SGD, one mini-batch per step. Submit it with
the command after `--` (the script must be on the node; the agent runs it in
the job's working directory, with PATH=/usr/local/bin:/usr/bin:/bin):

    greenlight submit --team ml-research --gpus 1 --gpu-hours 2 --max-cost 10 \\
        --checkpointable -- python3 /opt/greenlight/train_checkpoint.py --steps 5000

Checkpoints: every --checkpoint-every steps, at the end, and when stopped,
it writes checkpoint.json (--checkpoint) in its working directory, atomically:
a temporary file in the same directory, fsync, rename over the old one, fsync
of the directory. A reader (or a resumed run) sees the previous checkpoint or
the new one, never half of one.

Resuming: when GREENLIGHT_RESUME=1 (set by greenlight-agent on the resumed
runs of a split or requeued checkpointable job) or with --resume, it goes on
from the checkpoint and says which one. Each step's mini-batch is drawn from
its own seeded generator, so a run that was stopped and resumed ends with
exactly the weights of one that never stopped. Without a checkpoint (a job
resumed on another node: working directories are per node) it says so and
starts from step 0. Without GREENLIGHT_RESUME it starts from step 0 and
overwrites the checkpoint.

Stopping: SIGTERM (what the agent sends on cancel, a budget stop or the end
of a slot, with SIGKILL after the grace period) lets the current step finish,
writes a checkpoint and exits 143 = 128 + SIGTERM, the code of a process
killed by SIGTERM: the run was stopped, not done, and nothing reading the
exit status takes it for a success. SIGINT likewise exits 130. The exit is 0
only once every step is done; 1 when the checkpoint to resume from cannot
be read; 2 for a bad command line.

Output: one line per --log-every steps with GREENLIGHT_JOB_ID, the step and
the loss, flushed at once (the agent keeps stdout in the job's log).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone

EXIT_DONE = 0
EXIT_BAD_CHECKPOINT = 1
CHECKPOINT_VERSION = 1


class Stop:
    """The signal that asked the run to stop (0: none yet)."""

    signum = 0

    @classmethod
    def handler(cls, signum, _frame):
        cls.signum = cls.signum or signum


def log(job: str, text: str) -> None:
    print(f"[{job}] {text}", flush=True)


def batch(seed: int, step: int, size: int):
    """The step's mini-batch: the same for a given (seed, step), run after run."""
    rng = random.Random(seed * 1_000_003 + step)
    xs = [rng.uniform(-1.0, 1.0) for _ in range(size)]
    return [(x, 3.0 * x + 2.0 + rng.gauss(0.0, 0.1)) for x in xs]


def sgd_step(w: float, b: float, data, lr: float):
    n = len(data)
    errors = [(w * x + b) - y for x, y in data]
    loss = sum(e * e for e in errors) / n
    grad_w = 2.0 * sum(e * x for e, (x, _) in zip(errors, data)) / n
    grad_b = 2.0 * sum(errors) / n
    return w - lr * grad_w, b - lr * grad_b, loss


def write_checkpoint(path: str, state: dict) -> None:
    """Atomically replaces ``path`` with ``state`` as JSON."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself is durable
    finally:
        os.close(dir_fd)


def read_checkpoint(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    for key, kind in (("step", int), ("w", float), ("b", float)):
        if not isinstance(state.get(key), (int, float)) or isinstance(state.get(key), bool):
            raise ValueError(f"{key} missing or not a number")
        state[key] = kind(state[key])
    if state["step"] < 0:
        raise ValueError("step is negative")
    return state


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200, help="steps in all (default 200)")
    p.add_argument("--checkpoint-every", type=int, default=10, metavar="N", help="checkpoint every N steps (default 10)")
    p.add_argument("--checkpoint", default="checkpoint.json", metavar="PATH", help="checkpoint file, relative to the working directory (default checkpoint.json)")
    p.add_argument("--step-time", type=float, default=0.05, metavar="SECONDS", help="simulated compute per step (default 0.05)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=1, metavar="N", help="a progress line every N steps (default 1)")
    p.add_argument("--resume", action="store_true", help="resume from the checkpoint, as GREENLIGHT_RESUME=1 does")
    args = p.parse_args(argv)
    for name in ("steps", "checkpoint_every", "batch_size", "log_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.step_time < 0:
        p.error("--step-time must be >= 0")

    job = os.environ.get("GREENLIGHT_JOB_ID") or "local"
    resume = args.resume or os.environ.get("GREENLIGHT_RESUME") == "1"
    path = os.path.abspath(args.checkpoint)
    config = {"lr": args.lr, "batch_size": args.batch_size, "seed": args.seed}
    signal.signal(signal.SIGTERM, Stop.handler)
    signal.signal(signal.SIGINT, Stop.handler)

    step, w, b, loss = 0, 0.0, 0.0, None
    if resume:
        if os.path.exists(path):
            try:
                ckpt = read_checkpoint(path)
            except (OSError, ValueError) as e:
                print(f"[{job}] cannot resume from {path}: {e}", file=sys.stderr, flush=True)
                return EXIT_BAD_CHECKPOINT
            step, w, b, loss = ckpt["step"], ckpt["w"], ckpt["b"], ckpt.get("loss")
            log(
                job,
                f"resumed from {path}: step {step} (loss {loss}, w {w:.6f}, b {b:.6f}; "
                f"written by job {ckpt.get('job_id') or '-'} at {ckpt.get('time') or '-'})",
            )
            if ckpt.get("config") and ckpt["config"] != config:
                log(job, f"warning: the checkpoint was made with {ckpt['config']}, this run uses {config}")
        else:
            log(job, f"asked to resume but there is no checkpoint at {path}: starting from step 0")
    log(job, f"training from step {step} to {args.steps} (lr {args.lr}, checkpoint every {args.checkpoint_every} steps into {path})")

    def checkpoint(done: bool) -> None:
        write_checkpoint(
            path,
            {
                "version": CHECKPOINT_VERSION,
                "step": step,
                "steps": args.steps,
                "done": done,
                "w": w,
                "b": b,
                "loss": loss,
                "config": config,
                "job_id": os.environ.get("GREENLIGHT_JOB_ID", ""),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
            },
        )
        log(job, f"checkpoint: step {step} -> {path}")

    while step < args.steps and not Stop.signum:
        if args.step_time:
            time.sleep(args.step_time)  # resumed after a signal's handler (PEP 475)
        w, b, loss = sgd_step(w, b, batch(args.seed, step, args.batch_size), args.lr)
        step += 1
        if step % args.log_every == 0 or step == args.steps:
            log(job, f"step {step}/{args.steps} loss {loss:.6f} w {w:.6f} b {b:.6f}")
        if step % args.checkpoint_every == 0 and step < args.steps:
            checkpoint(done=False)

    if Stop.signum:
        name = signal.Signals(Stop.signum).name
        checkpoint(done=False)
        log(job, f"stopped by {name} at step {step}/{args.steps}; resume with GREENLIGHT_RESUME=1")
        return 128 + Stop.signum
    checkpoint(done=True)
    log(job, f"done: {step} steps, loss {loss}, w {w:.6f}, b {b:.6f}")
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
