"""Tokenizers rebuilt from GGUF files, where ``transformers``' own GGUF conversion gets them wrong.

- SmolLM2's byte-level BPE: some ``transformers`` versions convert it as a CodeLlama tokenizer
  (wrong end-of-turn token, a BOS before every text, spurious special tokens).
- Gemma 3's SentencePiece BPE: the GGUF holds pieces and scores but no merges, and ``transformers``
  reads it as a Unigram model, which splits words into characters ("c", "ap", "it", "al"); the merges
  are recovered from the scores as SentencePiece's own converter does (a piece merges its two halves,
  ranked by the piece's score).

Each builder checks its result (special tokens, round trips, a known segmentation) and fails loudly.
"""

from __future__ import annotations

import json
from pathlib import Path

from rcstat.errors import RCStatError

END_OF_TURN = "<|im_end|>"


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
    """SmolLM2's tokenizer: fail loudly if end-of-turn, BOS handling or byte-level round trips are wrong."""
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


def gemma_tokenizer(gguf: Path):
    """Gemma 3's tokenizer from the pieces, scores and token types of its GGUF file."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    fields = GGUFReader(gguf).fields

    def values(key: str) -> list:
        field = fields[key]
        return [field.parts[i] for i in field.data]

    pieces = [bytes(part).decode("utf-8") for part in values("tokenizer.ggml.tokens")]
    scores = [float(part[0]) for part in values("tokenizer.ggml.scores")]
    types = [int(part[0]) for part in values("tokenizer.ggml.token_type")]  # 1 normal, 3/4 special, 6 byte
    vocab = {piece: i for i, piece in enumerate(pieces)}
    merges = sorted(
        (-scores[i], vocab[piece[:k]], vocab[piece[k:]], piece[:k], piece[k:])
        for piece, i in vocab.items()
        if types[i] == 1
        for k in range(1, len(piece))
        if piece[:k] in vocab and piece[k:] in vocab
    )
    model = models.BPE(
        vocab=vocab,
        merges=[(a, b) for *_, a, b in merges],
        unk_token="<unk>",
        byte_fallback=True,
        fuse_unk=True,
    )
    backend = Tokenizer(model)
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    backend.add_special_tokens(
        [
            AddedToken(p, special=True, normalized=False)
            for p, t in zip(pieces, types, strict=True)
            if t in (3, 4)
        ]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>"
    )
    check_gemma_tokenizer(tokenizer)
    return tokenizer


def check_gemma_tokenizer(tokenizer) -> None:
    """Gemma 3's tokenizer: whole words, BOS first, exact round trips, special tokens kept whole."""
    problems = []
    if tokenizer("The capital of France is", add_special_tokens=False).input_ids != [
        818,
        5279,
        529,
        7001,
        563,
    ]:
        problems.append("words are not kept whole (the merges are wrong)")
    probe = "Héllo  wörld,\n\ta test <end_of_turn> ok 1234"
    ids = tokenizer(probe).input_ids
    if not ids or ids[0] != tokenizer.bos_token_id:
        problems.append("no BOS before the text")
    if tokenizer.decode(ids[1:]) != probe:
        problems.append("decode(encode(text)) does not give the text back")
    if tokenizer.convert_tokens_to_ids("<end_of_turn>") not in ids:
        problems.append("<end_of_turn> is split")
    if problems:
        raise RCStatError("the Gemma 3 tokenizer is broken: " + "; ".join(problems))
