"""Compare two runs of run.sh: every KV-ablation answer and every attribution span's top chunk."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def main(before: str, after: str) -> None:
    old, new = lines(Path(f"{before}-ablation/log.jsonl")), lines(Path(f"{after}-ablation/log.jsonl"))
    cells = [
        (a["index"], k, a["results"][k]["answer"], b["results"][k]["answer"])
        for a, b in zip(old, new, strict=True)
        for k in a["results"]
    ]
    changed = [c for c in cells if c[2] != c[3]]
    print(f"KV ablation: {len(cells) - len(changed)} of {len(cells)} answers identical")
    for index, key, a, b in changed:
        print(f"  sample {index} {key}: {a!r} -> {b!r}")
    old, new = (json.loads(Path(f"{p}-attribution.json").read_text())["records"] for p in (before, after))
    tops = [
        (r["methods"][m]["top"], s["methods"][m]["top"])
        for r, s in zip(old, new, strict=True)
        for m in r["methods"]
    ]
    print(f"attribution: {sum(a == b for a, b in tops)} of {len(tops)} span × method top chunks identical")


if __name__ == "__main__":
    main(*sys.argv[1:3])
