"""Where a result came from: the git commit of the code that produced it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(paths: tuple[str, ...] = ()) -> str | None:
    """Short commit of rcstat's checkout, ``-dirty`` if tracked files (under ``paths``) changed.

    ``paths`` are relative to the top of the checkout.

    ``None`` when rcstat is not running from a git checkout (an installed wheel).
    """
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=here, check=False).stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        spec = [f":(top){p}" for p in paths]
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", *spec).strip() if commit else ""
    except OSError:
        return None
    return (commit + ("-dirty" if dirty else "")) or None
