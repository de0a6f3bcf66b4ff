"""The code blocks of the README and of docs/, with what the doc tests are told to do with
each: an HTML comment on the line before a block says it, else its language does.

    <!-- run: serves -->          a command that serves until stopped: started, awaited until
                                  it says where it serves, stopped with SIGTERM
    <!-- run: with an invite link as its argument -->   a Python program given a link
    <!-- run: with an invite link as its argument, the host restarted once it is ready -->
                                  the same; the program prints `ready`, then `serve` is
                                  stopped and started again on the same port
    <!-- run: with a PostgreSQL in $STORE and a Redis in $BROKER -->   a shell block run
                                  with a throwaway PostgreSQL and Redis
    <!-- run: pytest in a fresh venv ... -->            a test file, run by tests/test_wheel.py
    <!-- not run: WHY -->         shown only; the reason is required

Unmarked `sh` blocks run in bash and `python` blocks in Python, as written; blocks in other
languages (output, JavaScript, configuration files) are shown, not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = ("sh", "python")
_FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\s*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<kind>not run|run):\s*(?P<what>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block."""

    path: Path
    line: int
    language: str
    code: str
    directive: str | None
    """`run: ...` or `not run: ...` from the comment before the block, if any."""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def documents() -> list[Path]:
    """The README and every docs page but the generated command reference."""
    pages = sorted(path for path in (ROOT / "docs").glob("*.md") if path.name != "cli.md")
    return [ROOT / "README.md", *pages]


def blocks(path: Path) -> list[Block]:
    """The code blocks of one Markdown file, in order."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        indent = fence["indent"]
        end = index + 1
        while lines[end].strip() != "```":
            end += 1
        code = "\n".join(line[len(indent):] for line in lines[index + 1:end]) + "\n"
        found.append(Block(path, index + 1, fence["language"], code,
                           _directive_before(lines, index)))
        index = end + 1
    return found


def _directive_before(lines: list[str], index: int) -> str | None:
    for line in reversed(lines[:index]):
        if line.strip():
            match = _DIRECTIVE.match(line)
            return f"{match['kind']}: {match['what']}" if match else None
    return None


def all_blocks() -> list[Block]:
    """Every code block of the README and the docs."""
    return [block for path in documents() for block in blocks(path)]
