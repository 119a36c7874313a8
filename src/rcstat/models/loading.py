"""Load a causal LM and its tokenizer by name: the embedded default, a local path, or a hub id."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from rcstat.errors import RCStatError
from rcstat.models.embedded import DEFAULT_MODEL, EMBEDDED, embedded, model_dir, prepare
from rcstat.options import DEFAULT_DEVICE, DEFAULT_DTYPE


def model_name(model) -> str:
    """How results and head profiles name a loaded model: the embedded default by its name, any
    other by the id or path it was loaded from."""
    source = str(getattr(model.config, "name_or_path", "") or type(model).__name__)
    return next((name for name in EMBEDDED if Path(source) == model_dir(name)), source)


def resolve(name_or_path: str | None) -> str:
    """Directory or hub id to hand to ``from_pretrained``; prepares an embedded model if needed."""
    model = embedded(DEFAULT_MODEL if name_or_path is None else name_or_path)
    return str(prepare(model.name)) if model else name_or_path


def pick_device(device: str = DEFAULT_DEVICE) -> str:
    """``auto``: the GPU when torch sees one, else the CPU; anything else as given (``cuda:1`` too),
    once torch is known to see it."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind = device.split(":")[0]
    seen = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if kind not in seen:
        raise RCStatError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps", option="device")
    if not seen[kind]:
        raise RCStatError(f"device {device!r} is not available to torch here", option="device")
    return device


def pick_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto``: bfloat16 on a GPU (as kvpress runs), float32 on the CPU; else the named dtype."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def model_limit(model) -> int | None:
    """The most positions ``model`` takes (None where its config does not say)."""
    return getattr(model.config, "max_position_embeddings", None)


@dataclass(frozen=True)
class ModelSource:
    """Which model to load, where and in what precision; picklable, so that a worker loads the same
    (``auto`` resolves on the machine that loads: each Ray worker on its own GPU)."""

    name: str | None = None
    device: str = DEFAULT_DEVICE
    dtype: str = DEFAULT_DTYPE

    def check(self) -> None:
        """Fail now if the model cannot load (:func:`check_model`); a device is checked where it loads."""
        check_model(self.name)

    def load(self):
        """``(model, tokenizer)``, as :func:`load_model`."""
        device = pick_device(self.device)
        return load_model(self.name, dtype=pick_dtype(self.dtype, device), device=device)

    def tokenizer(self):
        """The tokenizer alone (no weights load), for checks before the model loads."""
        return load_tokenizer(self.name)

    @classmethod
    def of(cls, model) -> ModelSource:
        """The source that loads ``model`` again in its dtype, on the loading machine's GPU if any."""
        if not getattr(model.config, "name_or_path", ""):
            raise RCStatError(
                "workers load the model by its name or path, and this one has none: save it "
                "(save_pretrained) and load it from there"
            )
        return cls(model_name(model), DEFAULT_DEVICE, str(model.dtype).removeprefix("torch."))


def load_model(
    name_or_path: str | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    attn_implementation: str | None = None,
):
    """Load ``(model, tokenizer)`` in eval mode. ``None`` means the embedded default model.

    Any Hugging Face model id or local checkpoint directory works; failures (no such path, no
    network, not a causal LM) raise :class:`RCStatError` with a one-line reason.
    """
    from transformers import AutoModelForCausalLM

    source = _checked(name_or_path)
    tokenizer = load_tokenizer(source)
    kwargs = {"dtype": dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with _clear_errors(source):
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    return model.to(device).eval(), tokenizer


def load_tokenizer(name_or_path: str | None = None):
    """The tokenizer of :func:`load_model`'s model, alone; failures as one-line :class:`RCStatError`."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # rcstat checks every input's length against the model itself and says so in one line; the
    # tokenizer's own "will result in indexing errors" warning would come first and say less.
    hf_logging.get_logger("transformers.tokenization_utils_base").setLevel(hf_logging.ERROR)
    source = _checked(name_or_path)
    with _clear_errors(source):
        return AutoTokenizer.from_pretrained(source)


def check_model(name_or_path: str | None) -> None:
    """Fail now, with :func:`load_model`'s one-line reason, if the model cannot load (its config is
    read; no weights are): for jobs whose workers load it later."""
    from transformers import AutoConfig

    source = _checked(name_or_path)
    with _clear_errors(source):
        AutoConfig.from_pretrained(source)


def _checked(name_or_path: str | None) -> str:
    source = resolve(name_or_path)
    if _looks_local(source) and not Path(source).expanduser().is_dir():
        raise RCStatError(f"model path {source!r} does not exist or is not a directory")
    return source


def _looks_local(source: str) -> bool:
    return source.startswith((".", "/", "~")) or Path(source).expanduser().exists()


@contextmanager
def _clear_errors(source: str) -> Iterator[None]:
    """Loading errors (no such path, no network, not a causal LM) as one-line :class:`RCStatError`."""
    try:
        yield
    except (OSError, ValueError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
        if offline and not _looks_local(source):
            reason += " HF_HUB_OFFLINE is set, so only models already in the hub cache load."
        raise RCStatError(
            f"cannot load model {source!r}: {reason} "
            f"(pass a local checkpoint directory, a reachable hub id, or one of {', '.join(EMBEDDED)})"
        ) from err
