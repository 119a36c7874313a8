"""Load a causal LM and its tokenizer by name: the embedded default, a local path, or a hub id."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from rcstat.errors import RCStatError
from rcstat.models.embedded import DEFAULT_MODEL, EMBEDDED, embedded, model_dir, prepare


def model_name(model) -> str:
    """How results and head profiles name a loaded model: the embedded default by its name, any
    other by the id or path it was loaded from."""
    source = str(getattr(model.config, "name_or_path", "") or type(model).__name__)
    return next((name for name in EMBEDDED if Path(source) == model_dir(name)), source)


def resolve(name_or_path: str | None) -> str:
    """Directory or hub id to hand to ``from_pretrained``; prepares an embedded model if needed."""
    model = embedded(DEFAULT_MODEL if name_or_path is None else name_or_path)
    return str(prepare(model.name)) if model else name_or_path


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
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    source = resolve(name_or_path)
    looks_local = source.startswith((".", "/", "~")) or Path(source).expanduser().exists()
    if looks_local and not Path(source).expanduser().is_dir():
        raise RCStatError(f"model path {source!r} does not exist or is not a directory")
    kwargs = {"dtype": dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
        if offline and not looks_local:
            reason += " HF_HUB_OFFLINE is set, so only models already in the hub cache load."
        raise RCStatError(
            f"cannot load model {source!r}: {reason} "
            f"(pass a local checkpoint directory, a reachable hub id, or one of {', '.join(EMBEDDED)})"
        ) from err
    return model.to(device).eval(), tokenizer
