"""Ctrl-C (SIGINT) sent to a running ``rcstat`` (issue 30): exit code 130 and one line,
``rcstat: interrupted``, within seconds, in the middle of the work and while a Ray cluster does not
answer; no traceback, and no output left half-written (a file written whole is not there at all;
a corpus output holds whole rows only)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import QUOTESUM_ROW, write_jsonl


def start(argv: list[str], tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    """``rcstat *argv`` in a child process, its stderr to a file (read while it runs)."""
    err = tmp_path / "stderr.txt"
    child_env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env}
    code = "import sys; from rcstat.cli import main; sys.exit(main())"
    with err.open("wb") as handle:
        child = subprocess.Popen(
            [sys.executable, "-c", code, *argv], stdout=subprocess.DEVNULL, stderr=handle, env=child_env
        )
    return child, err


def wait_for(condition: Callable[[], bool], child: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert child.poll() is None, "the command ended before it could be interrupted"
        assert time.monotonic() < deadline, "the command never reached the point to interrupt"
        time.sleep(0.05)


def interrupt(child: subprocess.Popen, err: Path, within: float = 10) -> None:
    """Send SIGINT; the command must end with 130 and one line within ``within`` seconds."""
    child.send_signal(signal.SIGINT)
    try:
        code = child.wait(timeout=within)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail(f"still running {within} s after SIGINT")
    text = err.read_text()
    lines = text.strip().splitlines()
    assert code == 130 and "Traceback" not in text and "Exception" not in text, text
    assert lines[-1] == "rcstat: interrupted" and text.count("interrupted") == 1, text


def test_ctrl_c_in_a_corpus_run_keeps_whole_rows(tiny_checkpoint, tmp_path) -> None:
    rows = [
        {"id": i, "query": "Who?", "context": "Ada wrote it. Bo read it.", "response": "Ada."}
        for i in range(400)
    ]
    data, out = write_jsonl(tmp_path / "corpus.jsonl", rows), tmp_path / "out.jsonl"
    child, err = start(
        ["attribute", "--data", data, "--output", str(out), "--model", tiny_checkpoint], tmp_path
    )
    wait_for(lambda: out.exists() and out.stat().st_size > 0, child)
    interrupt(child, err)
    text = out.read_text()
    assert text.endswith("\n") and all(json.loads(line)["id"] >= 0 for line in text.splitlines())
    assert len(text.splitlines()) < len(rows)  # it was stopped, not finished


def test_ctrl_c_in_a_benchmark_writes_no_output(tiny_checkpoint, tmp_path) -> None:
    rows = [{**QUOTESUM_ROW, "question": f"Who {i}?"} for i in range(300)]
    data, out = write_jsonl(tmp_path / "q.jsonl", rows), tmp_path / "results" / "r.json"
    out.parent.mkdir()
    argv = ["bench", "attribution", "--dataset", "quotesum", "--data", data, "--method", "rcstat,attention"]
    child, err = start([*argv, "--model", tiny_checkpoint, "--output", str(out)], tmp_path)
    wait_for(lambda: " examples (" in err.read_text(), child)  # a progress line: the work is under way
    interrupt(child, err)
    assert list(out.parent.iterdir()) == []  # neither the results nor a temporary file


def test_ctrl_c_while_a_ray_cluster_does_not_answer(tiny_checkpoint, tmp_path) -> None:
    pytest.importorskip("ray")
    server = socket.socket()
    server.bind(("0.0.0.0", 0))  # Ray reaches 127.0.0.1 by this machine's own address
    server.listen()
    server.settimeout(60)
    data = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "query": "Who?", "context": "Ada wrote it."}])
    address = f"127.0.0.1:{server.getsockname()[1]}"
    argv = ["attribute", "--data", data, "--output", str(tmp_path / "o.jsonl"), "--model", tiny_checkpoint]
    child, err = start([*argv, "--ray-address", address], tmp_path, RCSTAT_RAY_CONNECT_SECONDS="120")
    try:
        accepted = [server.accept()[0] for _ in range(2)]  # the TCP check, then Ray's own connection
        interrupt(child, err)
    finally:
        server.close()
        if child.poll() is None:
            child.kill()
    for connection in accepted:
        connection.close()
    assert not (tmp_path / "o.jsonl").exists()
