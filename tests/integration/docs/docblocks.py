"""Finds the code blocks of a Markdown file that the docs test runs.

A fenced block (``` or ~~~, up to any indentation) is run when its info
string's first word is one of SHELL_LANGS or PYTHON_LANGS; any other fence
(```yaml, ```text, a plain ```) is documentation only and never run.

A runnable block is skipped only when the line right before its opening fence
is exactly

    <!-- docs-test: skip (REASON) -->

with a non-empty REASON. A docs-test comment that is malformed, has no reason,
or is not directly followed by a fence is an error (ExtractError), so that a
typo can never silently turn a block off. An unclosed fence is an error too.

Line numbers are 1-based and name the opening fence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

SHELL_LANGS = ("sh", "bash", "console", "shell")
PYTHON_LANGS = ("python",)

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*skip\s*\((?P<reason>.*)\)\s*-->\s*$")
_ANY_MARKER = re.compile(r"<!--\s*docs-test", re.IGNORECASE)


class ExtractError(ValueError):
    pass


@dataclass(frozen=True)
class Block:
    path: str            # the file as named in messages
    line: int            # 1-based line of the opening fence
    lang: str            # first word of the info string, lowercased ("" for a plain fence)
    text: str            # the content, without the fences, indentation removed
    skip_reason: Optional[str] = None

    @property
    def kind(self) -> Optional[str]:
        """"shell", "python" or None (not run)."""
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang in PYTHON_LANGS:
            return "python"
        return None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def script(self) -> str:
        """What is run. A ```console block holding `$ ` prompts runs only its
        prompted commands (and their backslash continuations); the other lines
        are sample output. Every other block runs as written."""
        if self.lang != "console":
            return self.text
        lines = self.text.split("\n")
        if not any(l.startswith("$ ") or l == "$" for l in lines):
            return self.text
        out: List[str] = []
        continued = False
        for l in lines:
            if continued:
                out.append(l)
            elif l.startswith("$ ") or l == "$":
                out.append(l[2:])
            else:
                continue
            continued = l.endswith("\\")
        return "\n".join(out) + "\n"


def _dedent(line: str, indent: str) -> str:
    n = 0
    while n < len(indent) and n < len(line) and line[n] in " \t":
        n += 1
    return line[n:]


def extract(text: str, path: str = "<markdown>") -> List[Block]:
    """Every fenced block of ``text`` in order (runnable or not)."""
    lines = text.split("\n")
    blocks: List[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _ANY_MARKER.search(line):
            m = _MARKER.match(line)
            if not m:
                raise ExtractError(
                    f"{path}:{i + 1}: malformed docs-test marker {line.strip()!r}: "
                    "expected <!-- docs-test: skip (REASON) -->"
                )
            if not m.group("reason").strip():
                raise ExtractError(f"{path}:{i + 1}: docs-test skip marker without a reason: {line.strip()!r}")
            if i + 1 >= len(lines) or not _FENCE.match(lines[i + 1]):
                raise ExtractError(
                    f"{path}:{i + 1}: docs-test skip marker not directly followed by a code fence"
                )
            i += 1
            continue
        m = _FENCE.match(line)
        if not m:
            i += 1
            continue
        fence, indent, info = m.group("fence"), m.group("indent"), m.group("info").strip()
        if fence[0] == "`" and "`" in info:
            i += 1  # not a fence (CommonMark): inline code such as ```x```
            continue
        lang = info.split()[0].lower() if info else ""
        lang = lang.lstrip("{.").rstrip("}")  # ```{.python} and ```{python}
        start = i
        body: List[str] = []
        i += 1
        closed = False
        while i < len(lines):
            c = re.match(r"^[ \t]*(`{3,}|~{3,})[ \t]*$", lines[i])
            if c and c.group(1)[0] == fence[0] and len(c.group(1)) >= len(fence):
                closed = True
                break
            body.append(_dedent(lines[i], indent))
            i += 1
        if not closed:
            raise ExtractError(f"{path}:{start + 1}: code fence {fence}{info} is never closed")
        reason = None
        if start > 0:
            pm = _MARKER.match(lines[start - 1])
            if pm:
                reason = pm.group("reason").strip()
        blocks.append(Block(path, start + 1, lang, "\n".join(body) + ("\n" if body else ""), reason))
        i += 1  # past the closing fence
    return blocks


def extract_file(filename: str, display: Optional[str] = None) -> List[Block]:
    with open(filename, encoding="utf-8") as f:
        return extract(f.read(), display or filename)


def logical_lines(script: str) -> List[str]:
    """Shell lines with backslash continuations joined (for finding one
    command of a block)."""
    out: List[str] = []
    cur = ""
    for l in script.split("\n"):
        if l.endswith("\\"):
            cur += l[:-1] + " "
            continue
        cur += l
        if cur.strip():
            out.append(cur)
        cur = ""
    if cur.strip():
        out.append(cur)
    return out
