"""What ended in a traceback (issue 30) now works or ends in one line: presses that run their own
passes in ``compress``, base models without a chat template, a Ray cluster that is not there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rcstat import cli
from tests.cli.test_errors import fail
from tests.helpers import write_jsonl


def test_observed_attention_compresses_on_the_replayed_prefill(tiny_checkpoint, context, capsys) -> None:
    """It reads attention weights the fast attention does not return: replayed, with a warning, not a
    message telling the user to set ``attn_implementation`` (which the command line cannot)."""
    argv = ["compress", "--context", context, "--query", "Who?", "--press", "observed_attention"]
    assert cli.main([*argv, "--model", tiny_checkpoint, "--max-new-tokens", "2", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["cache"] == "masked"
    assert "reads the attention weights" in err and "attn_implementation" not in err


@pytest.fixture(scope="module")
def base_checkpoint(tiny_checkpoint, tmp_path_factory) -> str:
    """The tiny checkpoint with its chat template removed, as a base model ships (Gemma 3 270m)."""
    path = tmp_path_factory.mktemp("base") / "model"
    shutil.copytree(tiny_checkpoint, path)
    (path / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return str(path)


@pytest.fixture
def context(tmp_path) -> str:
    path = tmp_path / "context.txt"
    path.write_text("Marie Curie won two Nobel Prizes. The Rhine rises in the Alps.")
    return str(path)


@pytest.mark.parametrize("press", ["kvzip", "kvzip+", "rcstat-zip"])
def test_presses_that_run_their_own_passes_hold_only_what_they_keep(
    press, tiny_checkpoint, context, capsys
) -> None:
    """A press with passes of its own (KVzip's repeat) runs into kvpress's masked cache, which keeps
    the repeat alive behind its views; the ragged cache (the default) copies the kept entries out and
    answers as the masked cache does."""
    argv = ["compress", "--context", context, "--query", "Who?", "--press", press, "--model", tiny_checkpoint]
    argv += ["--max-new-tokens", "4", "--format", "json"]
    records = {}
    for cache in ("ragged", "masked"):
        assert cli.main([*argv, "--cache", cache]) == 0
        records[cache] = json.loads(capsys.readouterr().out)
    ragged, masked = records["ragged"], records["masked"]
    assert ragged["cache"] == "ragged" and 0 < ragged["realised_ratio"] < 1
    assert ragged["answer"] == masked["answer"] and ragged["realised_ratio"] == masked["realised_ratio"]
    assert masked["kv_bytes_held"] > masked["kv_bytes_full"]  # the repeat's tensors held behind the views
    kept = 1 - ragged["realised_ratio"]
    assert ragged["kv_bytes_held"] <= 1.25 * kept * ragged["kv_bytes_full"]


def test_a_base_model_without_a_chat_template_attributes(base_checkpoint, context, tmp_path, capsys) -> None:
    from transformers import AutoTokenizer

    assert not AutoTokenizer.from_pretrained(base_checkpoint).chat_template
    one = ["--context", context, "--query", "Who won?", "--model", base_checkpoint, "--format", "json"]
    assert cli.main(["attribute", *one, "--response", "Marie Curie."]) == 0
    assert json.loads(capsys.readouterr().out)["sources"]
    assert cli.main(["cite", *one]) == 0  # the response generated from the plain prompt
    capsys.readouterr()
    data = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "query": "Who?", "context": "Ada wrote it."}])
    out = tmp_path / "o.jsonl"
    assert cli.main(["attribute", "--data", data, "--output", str(out), "--model", base_checkpoint]) == 0
    assert json.loads(capsys.readouterr().out)["done"] == 1


def test_a_ray_address_with_no_cluster_is_one_line(tiny_checkpoint, tmp_path, capsys) -> None:
    pytest.importorskip("ray")
    data = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "query": "Who?", "context": "Ada wrote it."}])
    argv = ["attribute", "--data", data, "--output", str(tmp_path / "o.jsonl"), "--model", tiny_checkpoint]
    line = fail([*argv, "--ray-address", "auto"], capsys, alone=False)
    assert line.startswith("rcstat: error: cannot start or reach Ray (") and line.endswith("(--ray-address)")
    assert not Path(tmp_path / "o.jsonl").exists()


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (as a firewall or a proxy can)."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


def closed_port() -> int:
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_an_unreachable_ray_address_is_one_line_within_seconds(
    silent_port, tiny_checkpoint, tmp_path, capsys, monkeypatch
) -> None:
    """Ray's own retries last minutes on an address that does not answer: rcstat gives up in seconds
    (RCSTAT_RAY_CONNECT_SECONDS) and at once on a refused connection, before the corpus is touched."""
    import time

    pytest.importorskip("ray")
    monkeypatch.setenv("RCSTAT_RAY_CONNECT_SECONDS", "3")
    data = write_jsonl(tmp_path / "c.jsonl", [{"id": 1, "query": "Who?", "context": "Ada wrote it."}])
    out = tmp_path / "o.jsonl"
    argv = ["attribute", "--data", data, "--output", str(out), "--model", tiny_checkpoint]
    silent = f"127.0.0.1:{silent_port.getsockname()[1]}"
    for address, reason in [
        (silent, f"no answer from {silent} within 3 s"),
        (f"127.0.0.1:{closed_port()}", "Connection refused"),
    ]:
        start = time.monotonic()
        line = fail([*argv, "--ray-address", address], capsys)
        assert time.monotonic() - start < 10
        assert line.startswith("rcstat: error: cannot start or reach Ray (") and reason in line, line
        assert line.endswith("(--ray-address)") and not out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.suffix == ".jsonl"] == ["c.jsonl"]
