"""The docs, walked in the order a reader meets them, on one running platform, as they say.

README.md, then docs/agents.md, messaging.md, workflows.md, cli.md, operations.md and api.md.
Every ```sh block runs as a bash script; in every ```console block each `$ ` line runs and the
lines under it are what it printed: a command shown printing `error: ...` must fail with that
error, every other one must succeed. A ```yaml or ```json block whose info string says
`file=NAME` is a file the reader saves, and `$ cat NAME` followed by its content is one too.
A block whose info string says `no-run` is shown, not run (a command that needs a tool the
platform does not ship, or that runs until the reader stops it); the text around it says why.

Ids in the docs are the ones a real run printed. The walk learns which id of this run stands for
which id of the docs from what the commands print (the n-th id a command printed is the n-th
id its documented output shows) and puts this run's ids into the commands that follow.

The reader's shell: the virtualenv active (its `bin` first on PATH), in a folder where
`examples/` is the repository's and `.cortex/` the data dir of the running platform, as after
`make up` in the repository. The platform is `cortex up` with `CORTEX_AGENT_PATH` as `make up`
sets it; `make up` lines of the docs are that platform, and its port replaces 8080.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DOCS = [
    "README.md",
    "docs/agents.md",
    "docs/messaging.md",
    "docs/workflows.md",
    "docs/cli.md",
    "docs/operations.md",
    "docs/api.md",
]

FENCE = re.compile(r"^```(\S*)(.*)$")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VOLATILE = [
    (UUID, "ID"),
    (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)?"), "TIME"),
    (re.compile(r"\s+"), " "),
]


@dataclass
class Block:
    doc: str
    line: int
    language: str
    info: str
    lines: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def blocks(doc: str) -> list[Block]:
    found: list[Block] = []
    current: Block | None = None
    for n, line in enumerate((REPO / doc).read_text().splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and current is None:
            current = Block(doc, n, fence[1], fence[2].strip())
        elif line.startswith("```") and current is not None:
            found.append(current)
            current = None
        elif current is not None:
            current.lines.append(line)
    return found


def shape(line: str) -> str:
    """A line with what changes from run to run (ids, times, figures, spacing) taken out."""
    return re.sub(r"\d+", "N", masked(line))


def masked(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return text.strip()


@dataclass
class Console:
    command: str
    output: list[str]


def console_steps(block: Block) -> list[Console]:
    steps: list[Console] = []
    for line in block.lines:
        if line.startswith("$ "):
            steps.append(Console(line[2:], []))
        elif steps:
            steps[-1].output.append(line)
    return steps


class Reader:
    """A shell of a reader following the docs: one folder, the platform's port."""

    def __init__(self, stack: Stack, home: Path) -> None:
        self.stack = stack
        self.home = home
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CORTEX_")},
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "VIRTUAL_ENV": str(Path(bin_dir).parent),
            "CORTEX_HTTP_PORT": str(stack.http_port),
            "CORTEX_NATS_PORT": str(stack.nats_port),
        }
        self.ids: dict[str, str] = {}
        """An id shown in the docs -> the id of this run that stands for it."""

    def localize(self, script: str) -> str:
        script = re.sub(r"^\s*(CORTEX_\w+=\S+ )*make (up|test)\b.*$", ":", script, flags=re.M)
        script = UUID.sub(lambda m: self.ids.get(m[0], m[0]), script)
        return script.replace("127.0.0.1:8080", f"127.0.0.1:{self.stack.http_port}").replace(
            "127.0.0.1:4222", f"127.0.0.1:{self.stack.nats_port}"
        )

    def learn(self, shown: list[str], printed: str) -> None:
        """Each documented line with ids stands for the first printed line of its shape."""
        lines = printed.splitlines()
        for line in shown:
            documented = UUID.findall(line)
            if not documented:
                continue
            for n, candidate in enumerate(lines):
                actual = UUID.findall(candidate)
                if shape(candidate) == shape(line) and len(actual) == len(documented):
                    self.ids.update(zip(documented, actual, strict=True))
                    del lines[n]
                    break
        documented, actual = UUID.findall("\n".join(shown)), UUID.findall(printed)
        if len(documented) == len(actual):  # the same ids in the same order, whatever the shape
            self.ids.update(zip(documented, actual, strict=True))

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", "set -eo pipefail\n" + self.localize(script)],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def save(self, name: str, lines: list[str]) -> None:
        (self.home / name).write_text("\n".join(lines) + "\n")


def walk(reader: Reader, block: Block) -> list[str]:
    """What went other than the docs say, for one block."""
    if "no-run" in block.info:
        return []
    named = re.search(r"\bfile=(\S+)", block.info)
    if named:
        reader.save(named[1], block.lines)
        return []
    if block.language == "sh":
        done = reader.run("\n".join(block.lines))
        if done.returncode != 0:
            return [f"{block.where}: exit {done.returncode}\n{done.stdout}{done.stderr}"]
        return []
    if block.language != "console":
        return []
    problems = []
    assignments: list[str] = []  # `X=...` lines of the block: the reader's shell keeps them
    for step in console_steps(block):
        cat = re.fullmatch(r"cat (\S+)", step.command)
        if cat:
            reader.save(cat[1], step.output)
            continue
        if re.match(r"^[A-Z_]+=", step.command):
            assignments.append(step.command)
        done = reader.run("\n".join([*assignments, step.command]))
        reader.learn(step.output, done.stdout + done.stderr)
        errors = [line for line in step.output if line.startswith("error:")]
        if errors:
            said = {masked(line) for line in (done.stdout + done.stderr).splitlines()}
            if done.returncode == 0 or masked(errors[0]) not in said:
                problems.append(
                    f"{block.where}: `{step.command}` should fail with {errors[0]!r}, "
                    f"got exit {done.returncode}:\n{done.stdout}{done.stderr}"
                )
        elif done.returncode != 0:
            problems.append(
                f"{block.where}: `{step.command}` exit {done.returncode}:\n"
                f"{done.stdout}{done.stderr}"
            )
    return problems


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    root = tmp_path_factory.mktemp("docs-walk")
    stack = Stack(
        root / "platform",
        CORTEX_ADMIN_TOKEN="",
        CORTEX_AGENT_PATH=str(REPO / "examples" / "agents"),
    ).start()
    home = root / "reader"
    home.mkdir()
    (home / "examples").symlink_to(REPO / "examples")
    (home / ".cortex").symlink_to(stack.data_dir)
    (home / ".venv").symlink_to(Path(sys.executable).parent.parent)
    yield Reader(stack, home)
    stack.stop()


def test_every_example_of_the_docs_runs_as_written_in_order(reader: Reader) -> None:
    problems: list[str] = []
    for doc in DOCS:
        for block in blocks(doc):
            problems.extend(walk(reader, block))
    assert not problems, "\n\n".join(problems)
