"""The README's first hour, walked as written: its "Five minutes" commands and its Python snippet,
on the embedded model, in a fresh folder beside `../shared` (as a new user's checkout is).

Fails on any traceback or internal error, a non-zero exit, a run id cut short, or a command that
stores a run without saying where and what to run next. The time each command took is printed
(`pytest -s`), not asserted: speed is measured in bench/, never in tests.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SHARED = ROOT.parent / "shared"
RUN_ID = r"\d{8}-\d{6}-[0-9a-f]{4}"
STORES_A_RUN = {"predict", "score", "forecast", "plan", "passk"}


def readme_block(heading: str, language: str) -> str:
    """The first fenced block of `language` after `heading` in the README."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", after, re.S)
    assert match, f"no {language} block under {heading!r}"
    return match[1]


def commands(block: str) -> list[list[str]]:
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


@pytest.fixture
def newcomer(tmp_path: Path, default_model) -> tuple[Path, dict[str, str]]:
    """A fresh folder with the examples and ../shared where the README expects them, and an
    environment as a user's shell has it (the model cache already warm from the session)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "shared").symlink_to(SHARED)
    env = {**os.environ, "COLUMNS": "80", "CONDPRED_PROGRESS": "1"}
    env.pop("CONDPRED_DB", None)
    return work, env


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data beside the checkout")
def test_the_five_minute_section_runs_as_written(newcomer):
    work, env = newcomer
    timings = []
    for argv in commands(readme_block("## Five minutes with the command line", "bash")):
        assert argv[0] == "condpred", argv
        started = time.perf_counter()
        if argv[1] == "serve":  # runs until stopped: open the address it prints, then stop it
            visit_the_viewer(argv, work, env)
            continue
        done = subprocess.run(
            [sys.executable, "-m", "condpred", *argv[1:]],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        timings.append((" ".join(argv[:3]), time.perf_counter() - started))
        said = done.stdout + done.stderr
        assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{said}"
        assert "Traceback" not in said and "internal error" not in said, said
        if argv[1] in STORES_A_RUN:
            started_line = re.search(rf"run ({RUN_ID}) \({argv[1]}\) started in (\S+);", said)
            assert started_line, f"{argv}: no start line naming the run and its store\n{said}"
            run_id = started_line[1]
            assert f"stored as run {run_id} in " in done.stdout, said
            assert f"next: condpred report {run_id}" in done.stdout, said
        if argv[1:3] == ["runs", "list"]:
            listed = re.findall(rf"^\s*({RUN_ID})\s", done.stdout, re.M)
            assert len(listed) == 2, done.stdout  # both runs so far, each id whole
            assert not re.search(r"\d{8}-[-0-9a-f]*…", done.stdout), done.stdout  # never cut
    for command, seconds in timings:
        print(f"{seconds:7.1f} s  {command}")
    print(f"{sum(s for _, s in timings):7.1f} s  in all")
    assert (work / "run.parquet").stat().st_size > 0 and (work / "run.html").stat().st_size > 0


def visit_the_viewer(argv: list[str], work: Path, env: dict[str, str]) -> None:
    """Start `condpred serve ...` as the README does, on a free port; its printed address must
    answer with the runs list."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "condpred", *argv[1:], "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = server.stdout.readline()
        address = re.search(r"http://\S+/", line)
        assert address, f"serve printed no address: {line!r}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(address[0], timeout=5) as page:
                    assert page.status == 200 and b"forecast" in page.read()
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"nothing answered at {address[0]}")
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_the_python_snippet_runs_as_written(newcomer):
    work, env = newcomer
    snippet = readme_block("## The same from Python", "python")
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=work, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    shifts = [line for line in done.stdout.splitlines() if line.startswith(("' yes' ", "' no' "))]
    assert len(shifts) == 2, done.stdout  # each answer's shift under the premises
    assert (work / "runs.db").is_file()
