"""Results record the commit of the code that produced them."""

from __future__ import annotations

import re

from rcstat.evaluation.provenance import git_commit


def test_commit_of_this_checkout() -> None:
    commit = git_commit()
    assert commit is not None and re.fullmatch(r"[0-9a-f]{7,}(-dirty)?", commit)
    scoped = git_commit(paths=("a-path-that-does-not-exist",))
    assert scoped == commit.removesuffix("-dirty")  # nothing changed there
