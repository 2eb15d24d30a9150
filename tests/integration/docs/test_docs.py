"""Executable documentation (issue 17): the shell and Python blocks of
README.md and clients/python/README.md, run as written against the demo
server that `make run` starts, after its clock has run past two simulated
days.

- The server: scripts/run-demo.sh BUILD_DIR deploy/config/demo.yaml in a
  repository-shaped temporary folder (demo.py), with only its ports moved by
  extra greenlightd flags.
- Each ```sh / ```bash / ```console / ```shell block runs with
  `bash -euo pipefail -c`, each ```python block with /usr/bin/python3 and
  PYTHONPATH=<root>/clients/python, from that folder (the repository root as
  the reader has it), with a 60 s timeout. The one change to a block's text:
  127.0.0.1:50051 and 127.0.0.1:9464 become the test's addresses (and
  GREENLIGHT_TARGET names the gRPC one). A block fails on a non-zero exit or
  on error text in its output (ERROR_PATTERNS).
- Other fences (```yaml, ```text, a plain ```) are not run; a runnable block
  is skipped only behind `<!-- docs-test: skip (REASON) -->` on the line
  right before its fence (docblocks.py).
- README.md's first `greenlight estimate` is the README's example quote: it
  must show a carbon saving above zero.

By hand, from the repository root (`-m "not live"`: only the extractor tests):
    GREENLIGHT_BIN=build-test /usr/bin/python3 -m pytest -q -s tests/integration/docs
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from decimal import Decimal

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from demo import ROOT, Demo, find_binary, shadow_tree  # noqa: E402
from docblocks import Block, ExtractError, extract, extract_file  # noqa: E402

DOCS = ("README.md", "clients/python/README.md")
BLOCK_TIMEOUT = 60.0
PYTHON = "/usr/bin/python3"
DEMO_GRPC = "127.0.0.1:50051"
DEMO_METRICS = "127.0.0.1:9464"
# Run past two simulated days before the first block (demo: 3600x, ~49 s).
CLOCK_AHEAD_S = 49 * 3600
CLOCK_WAIT_TIMEOUT = 180.0

# Error text in a block's stdout or stderr, with what it means. The CLI
# (clients/python/greenlight/cli.py) reports a failed call as
# "greenlight: <ErrorClass>: <message> [<CODE>]" on stderr (JSON:
# {"error": {...}}), a bad command line as argparse's "PROG: error: ...".
ERROR_PATTERNS = (
    (re.compile(r"Traceback \(most recent call last\)"), "a Python traceback"),
    (re.compile(r"^greenlight: [A-Z][A-Za-z]*: ", re.M), "a CLI error (greenlight: <ErrorClass>: ...)"),
    (re.compile(r"^greenlight: cannot set up the connection", re.M), "a CLI connection error"),
    (re.compile(r'"error"\s*:'), "a CLI error in JSON"),
    (re.compile(r"Error:"), "an error"),
    (re.compile(r"error:"), "an error (e.g. a bad command line)"),
    (re.compile(r"InvalidJob"), "an invalid job"),
    (re.compile(r"must be in the future"), "a time in the past"),
    # examples/sweep.py reports refused runs this way and still exits 0.
    (re.compile(r"does not fit its caps"), "a sweep run refused by its caps"),
    (re.compile(r"team budget exhausted"), "a sweep stopped by the team budget"),
)


def error_text(output: str):
    """(what, the matching line) for the first error text in ``output``, or None."""
    for pattern, what in ERROR_PATTERNS:
        m = pattern.search(output)
        if m:
            start = output.rfind("\n", 0, m.start()) + 1
            end = output.find("\n", m.end())
            return what, output[start:end if end >= 0 else len(output)]
    return None


def substitute(text: str, grpc_address: str, metrics_address: str) -> str:
    """The one change made to a block: the demo's addresses become the test's."""
    return text.replace(DEMO_GRPC, grpc_address).replace(DEMO_METRICS, metrics_address)


def _collect():
    blocks, errors = [], []
    for rel in DOCS:
        try:
            blocks.extend(extract_file(os.path.join(ROOT, rel), rel))
        except (OSError, ExtractError) as e:
            errors.append(str(e))
    return blocks, errors


BLOCKS, EXTRACT_ERRORS = _collect()
RUNNABLE = [b for b in BLOCKS if b.kind]
COUNTS = {"ran": 0, "skipped": 0, "failed": 0}
SKIPPED: list = []
FAILED: list = []


# -- the extractor, without a server -----------------------------------------

def _one(md: str) -> Block:
    blocks = extract(textwrap.dedent(md), "doc.md")
    assert len(blocks) == 1, blocks
    return blocks[0]


@pytest.mark.parametrize(
    "fence,kind",
    [("sh", "shell"), ("bash", "shell"), ("console", "shell"), ("shell", "shell"), ("Bash", "shell"),
     ("python", "python"), ("python title=x.py", "python"), ("{.python}", "python"),
     ("yaml", None), ("text", None), ("", None), ("json", None), ("py", None), ("toml", None)],
)
def test_fence_languages(fence, kind):
    b = _one(f"intro\n\n```{fence}\necho hi\n```\n")
    assert b.kind == kind
    assert b.text == "echo hi\n"


def test_tilde_fences_indentation_and_longer_fences():
    md = "- item:\n\n   ~~~sh\n   echo a\n     echo b\n   ~~~\n\n````markdown\n```sh\nnot a block\n```\n````\n"
    blocks = extract(md, "doc.md")
    assert [(b.lang, b.line, b.kind) for b in blocks] == [("sh", 3, "shell"), ("markdown", 8, None)]
    assert blocks[0].text == "echo a\n  echo b\n"
    assert blocks[1].text == "```sh\nnot a block\n```\n"


def test_line_numbers_name_the_opening_fence():
    md = "# t\n\n```sh\na\n```\ntext\n\n```python\nprint(1)\n```\n\n```\nplain\n```\n"
    blocks = extract(md, "doc.md")
    assert [(b.line, b.lang) for b in blocks] == [(3, "sh"), (8, "python"), (12, "")]
    assert blocks[1].where == "doc.md:8"


def test_skip_marker_with_a_reason_skips_only_the_next_block():
    md = "<!-- docs-test: skip (needs the network) -->\n```sh\npip install x\n```\n\n```sh\necho run\n```\n"
    first, second = extract(md, "doc.md")
    assert first.skip_reason == "needs the network" and first.line == 2
    assert second.skip_reason is None


def test_skip_marker_must_be_right_before_the_fence():
    # A blank line between marker and fence: an error, not a silently run block.
    with pytest.raises(ExtractError, match=r"doc.md:1: .*not directly followed by a code fence"):
        extract("<!-- docs-test: skip (why) -->\n\n```sh\necho\n```\n", "doc.md")
    with pytest.raises(ExtractError, match="not directly followed"):
        extract("text\n<!-- docs-test: skip (why) -->\n", "doc.md")


@pytest.mark.parametrize(
    "marker",
    ["<!-- docs-test: skip () -->", "<!-- docs-test: skip (   ) -->", "<!-- docs-test: skip -->",
     "<!-- docs-test: skip because -->", "<!-- docs-test: run (x) -->", "<!-- docs-test skip (x) -->"],
)
def test_skip_marker_without_a_reason_or_malformed_is_an_error(marker):
    with pytest.raises(ExtractError, match=r"^doc.md:3: "):
        extract(f"# t\n\n{marker}\n```sh\nmake run\n```\n", "doc.md")


def test_markers_inside_code_blocks_and_other_comments_are_text():
    md = "<!-- a note -->\n```sh\n<!-- docs-test: skip () -->\n```\n"
    b = _one(md)
    assert b.skip_reason is None and "docs-test" in b.text


def test_unclosed_fence_is_an_error():
    with pytest.raises(ExtractError, match=r"doc.md:2: .*never closed"):
        extract("x\n```sh\necho\n", "doc.md")


def test_console_blocks_run_their_prompted_commands_only():
    b = _one("```console\n$ echo a \\\n    b\na b\n$ true\n```\n")
    assert b.script() == "echo a \\\n    b\ntrue\n"
    assert _one("```console\necho plain\n```\n").script() == "echo plain\n"
    assert _one("```sh\n$ echo kept\n```\n").script() == "$ echo kept\n"


def test_substitution_and_error_text():
    text = "greenlight --target 127.0.0.1:50051; curl http://127.0.0.1:9464/metrics"
    assert substitute(text, "127.0.0.1:1", "127.0.0.1:2") == \
        "greenlight --target 127.0.0.1:1; curl http://127.0.0.1:2/metrics"
    assert error_text("greenlight: CapExceeded: no placement [FAILED_PRECONDITION]\n")[1].startswith("greenlight: Cap")
    assert error_text("usage: greenlight ...\ngreenlight: error: argument --gpus: required\n")
    assert error_text("x\nTraceback (most recent call last):\n  ...\nNameError: name 'gl' is not defined\n")
    assert error_text("field: deadline: must be in the future\n")
    # The CLI's clock note on stderr is not an error.
    assert error_text("greenlight: relative times use the server's clock: 2026-01-01 00:00Z (3,600x)\n") is None
    assert error_text("feasible: 8 x H100 on aws ... carbon avoided vs baseline: 1.00 kg\n") is None


def test_the_readmes_parse_and_have_blocks_to_run():
    assert not EXTRACT_ERRORS, "\n".join(EXTRACT_ERRORS)
    assert any(b.kind and not b.skip_reason for b in BLOCKS), "no runnable block in " + ", ".join(DOCS)


# -- against the demo ----------------------------------------------------------

@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    timed_out: bool


@dataclass
class Env:
    demo: Demo
    root: str
    env: dict
    scratch: str


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    binary, required = find_binary()
    if not binary or not os.access(binary, os.X_OK):
        if required:
            pytest.fail(f"greenlightd not built: {binary} (build the greenlightd target)")
        pytest.skip("no greenlightd binary found (set GREENLIGHT_BIN to the build directory)")
    base = tmp_path_factory.mktemp("docs")
    root = shadow_tree(ROOT, str(base / "repo"))
    # Stubs for the test's own Ping, generated into the copy.
    sys.path.insert(0, os.path.join(root, "clients", "python"))
    import greenlight  # noqa: F401

    demo = Demo(binary, root, str(base / "run-demo.log"))
    demo.start()
    try:
        demo.wait_ready()
        assert os.path.isfile(os.path.join(root, ".demo", "greenlight.db")), "the demo store is not in the copy"
        demo.wait_server_time(CLOCK_AHEAD_S, CLOCK_WAIT_TIMEOUT)
        home = base / "home"
        home.mkdir()
        scratch = base / "blocks"
        scratch.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GREENLIGHT_") and k != "PYTHONPATH"}
        env.update(GREENLIGHT_TARGET=demo.target, HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
        yield Env(demo, root, env, str(scratch))
    finally:
        demo.stop()


def run_script(live: Env, kind: str, script: str, name: str, timeout: float = BLOCK_TIMEOUT) -> Run:
    script = substitute(script, live.demo.target, live.demo.metrics_address)
    env = dict(live.env)
    if kind == "shell":
        argv = ["bash", "-euo", "pipefail", "-c", script]
    else:
        path = os.path.join(live.scratch, re.sub(r"[^A-Za-z0-9]+", "_", name) + ".py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script)
        argv = [PYTHON, path]
        env["PYTHONPATH"] = os.path.join(live.root, "clients", "python")
    proc = subprocess.Popen(argv, cwd=live.root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return Run(proc.returncode, out, err, timed_out)


def failure(where: str, what: str, script: str, run: Run) -> str:
    return (f"{where}: {what}\n--- block (as run, addresses moved) ---\n{script.rstrip()}\n"
            f"--- exit {run.rc} ---\n--- stdout ---\n{run.stdout.rstrip()}\n--- stderr ---\n{run.stderr.rstrip()}")


def check(where: str, script: str, run: Run) -> None:
    if run.timed_out:
        pytest.fail(failure(where, f"did not finish in {BLOCK_TIMEOUT:.0f} s", script, run), pytrace=False)
    if run.rc != 0:
        pytest.fail(failure(where, f"exited with {run.rc}", script, run), pytrace=False)
    for stream in (run.stdout, run.stderr):
        found = error_text(stream)
        if found:
            pytest.fail(failure(where, f"{found[0]} in its output: {found[1].strip()!r}", script, run), pytrace=False)


def first_command(block: Block, needle: re.Pattern):
    """(line number, the command with its continuations) of the first line
    of ``block`` matching ``needle``, or None."""
    lines = block.script().split("\n")
    for i, line in enumerate(lines):
        if needle.search(line):
            cmd = [line]
            j = i
            while cmd[-1].endswith("\\") and j + 1 < len(lines):
                j += 1
                cmd.append(lines[j])
            return block.line + 1 + i, "\n".join(cmd) + "\n"
    return None


CARBON_AVOIDED = re.compile(r"^carbon avoided vs baseline: (-?[\d,]+(?:\.\d+)?) kg\s*$", re.M)


def carbon_avoided(output: str):
    """(kg, the line) of the first "carbon avoided vs baseline: X kg" line of
    `greenlight estimate` output (cli.render_quote, fmt_kg), or None."""
    m = CARBON_AVOIDED.search(output)
    return (Decimal(m.group(1).replace(",", "")), m.group(0).strip()) if m else None


@pytest.mark.parametrize(
    "line,kg",
    [("carbon avoided vs baseline: 25.90 kg", "25.90"), ("carbon avoided vs baseline: 0.00 kg", "0"),
     ("carbon avoided vs baseline: 1,234.56 kg", "1234.56"), ("carbon avoided vs baseline: 0.0012 kg", "0.0012"),
     ("carbon avoided vs baseline: -3.50 kg", "-3.5")],
)
def test_carbon_avoided_parses_the_estimate_output(line, kg):
    out = f"feasible: x (avoids 9.99 kg, costs $0.00 more)\n\ncarbon-blind baseline: p at t: $1.00, 2.00 kg\n{line}\n"
    assert carbon_avoided(out)[0] == Decimal(kg)
    assert carbon_avoided("feasible: x\n") is None


@pytest.mark.live
def test_readme_example_quote_avoids_carbon(live):
    """README.md's first `greenlight estimate` (the README's example quote)
    shows a carbon saving above zero against the carbon-blind baseline."""
    found = None
    for b in RUNNABLE:
        if b.path == "README.md" and b.kind == "shell" and not b.skip_reason:
            found = first_command(b, re.compile(r"\bgreenlight estimate\b"))
            if found:
                break
    assert found, "README.md runs no `greenlight estimate` command"
    line, cmd = found
    where = f"README.md:{line}"
    run = run_script(live, "shell", cmd, where)
    check(where, cmd, run)
    found = carbon_avoided(run.stdout)
    assert found, failure(where, "the quote has no 'carbon avoided vs baseline' line", cmd, run)
    avoided, shown = found
    assert avoided > 0, failure(
        where, f"the README's example quote avoids no carbon ({shown!r}); "
        "it should show a real saving over the carbon-blind baseline", cmd, run)


@pytest.mark.live
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_block(block, live):
    if block.skip_reason:
        COUNTS["skipped"] += 1
        SKIPPED.append(f"{block.where} ({block.skip_reason})")
        pytest.skip(f"{block.where}: {block.skip_reason}")
    COUNTS["ran"] += 1
    script = block.script()
    run = run_script(live, block.kind, script, block.where)
    try:
        check(f"{block.where} ({block.lang} block)", substitute(script, live.demo.target, live.demo.metrics_address),
              run)
    except BaseException:
        COUNTS["failed"] += 1
        FAILED.append(block.where)
        raise


@pytest.mark.live
def test_summary(live):
    others = len(BLOCKS) - len(RUNNABLE)
    print(f"\ndocs-test: {COUNTS['ran']} blocks ran ({COUNTS['failed']} failed: {', '.join(FAILED) or 'none'}), "
          f"{COUNTS['skipped']} skipped, {others} other fences not run")
    for s in SKIPPED:
        print(f"docs-test: skipped {s}")
    assert COUNTS["ran"] > 0, "no documentation block ran"
