"""Cost of RC scoring on top of a plain prefill (docs/method.md §1–3).

For prompts of 1k, 2k and 4k tokens on the embedded default model, with a 64-token query
window at the end of the prompt (the KV-compression setting of docs/method.md §3):

* ``prefill``            — the model's own forward (sdpa), nothing else;
* ``prefill+logits``     — the same forward with the logit engine streaming, per layer, the
  window's logits against every key (``LogitCapture(on_layer=…)``);
* ``prefill+<estimator>`` — the same, and per layer every key's expected RC against the
  window's self-contextualization, for all heads (docs/method.md §3, steps 1–3).

Time: one process per length runs the configurations interleaved, ``--repeats`` times after a
warm-up, and reports medians and the median of per-repeat ratios to the plain prefill, and the
seconds spent in the estimator itself. Peak memory: a fresh process per configuration reports its
peak RSS (``ru_maxrss``) and its RSS after loading the model. Memory workers run with
``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns large blocks to the system when they are
freed and peak RSS measures live memory: without it, the same configuration varies by about
±300 MB from run to run (allocator caching), far more than what is measured.

Run:  .venv/bin/python benchmarks/foundation/bench_logits.py   (about 10 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from rcstat import stats
from rcstat.evaluation.provenance import git_commit
from rcstat.models import DEFAULT_MODEL, load_model
from rcstat.models.logits import LogitCapture

HERE = Path(__file__).resolve().parent
# Only for memory workers: unmapping every freed large block makes peak RSS exact but slows
# allocation-heavy code several-fold, so timing workers run with the default allocator.
MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
CONFIGS = ["prefill", "prefill+logits", *[f"prefill+{e}" for e in stats.ESTIMATORS]]


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_input(n: int, seed: int) -> torch.Tensor:
    return torch.randint(20, 49000, (1, n), generator=torch.Generator().manual_seed(seed))


def run_config(model, ids: torch.Tensor, config: str, window: int) -> dict[str, float]:
    """One forward pass in the given configuration; returns its wall time and scoring time."""
    n = ids.shape[1]
    window_rows = list(range(n - window, n))
    spent = {"score_s": 0.0}

    def score(_: int, logits: torch.Tensor) -> None:
        start = time.perf_counter()
        if config != "prefill+logits":
            estimator = config.split("+", 1)[1]
            y = stats.self_samples(logits, window_rows, range(n), window_rows, window_rows)
            x = logits[..., : n - window].transpose(-1, -2)  # (batch, heads, candidates, window)
            stats.expected_rc(x, y.unsqueeze(-2), estimator)
        spent["score_s"] += time.perf_counter() - start

    start = time.perf_counter()
    with torch.no_grad():
        if config == "prefill":
            model(ids)
        else:
            with LogitCapture(model, window_rows, on_layer=score):
                model(ids)
    return {"wall_s": time.perf_counter() - start, **spent}


def worker_time(args: argparse.Namespace) -> dict:
    model, _ = load_model(args.model)
    ids = make_input(args.length, args.seed)
    for config in CONFIGS:  # warm-up
        run_config(model, ids, config, args.window)
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CONFIGS}
    for _ in range(args.repeats):
        for config in CONFIGS:
            runs[config].append(run_config(model, ids, config, args.window))
    plain = [r["wall_s"] for r in runs["prefill"]]
    out = {}
    for config, rs in runs.items():
        walls = [r["wall_s"] for r in rs]
        out[config] = {
            "wall_s_median": statistics.median(walls),
            "wall_s_all": walls,
            "score_s_median": statistics.median(r["score_s"] for r in rs),
            "time_ratio_to_prefill": statistics.median(w / p for w, p in zip(walls, plain, strict=True)),
        }
    return out


def worker_memory(args: argparse.Namespace) -> dict:
    model, _ = load_model(args.model)
    ids = make_input(args.length, args.seed)
    loaded = rss_mb()
    run_config(model, ids, args.config, args.window)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_after_load_mb": loaded, "peak_rss_mb": peak, "peak_increment_mb": peak - loaded}


def spawn(extra: list[str], common: list[str], env: dict[str, str] | None = None) -> dict:
    cmd = [sys.executable, __file__, *common, *extra]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **(env or {})})
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_report(result: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    meta = result["meta"]
    lines = [
        "# Foundation benchmark: cost of RC scoring over a plain prefill",
        "",
        f"Model `{meta['model']}`, float32, {meta['threads']} CPU threads, window {meta['window']} tokens, "
        f"random token prompts (seed {meta['seed']}), median of {meta['repeats']} interleaved repeats "
        f"after a warm-up. Commit `{meta['commit']}`, torch {meta['torch']}, {meta['date']}.",
        "",
        f"Reproduce: `{meta['command']}`",
        "",
        "Time ratio and peak-memory ratio are relative to the plain prefill at the same length "
        "(peak RSS of a fresh process per configuration, glibc told to unmap freed blocks at once). "
        "Scoring = the seconds spent in the estimator (the per-layer callback, logits already "
        "computed), summed over the 30 layers; its share of the prefill is the least noisy figure.",
        "",
        "| tokens | configuration | wall s | × prefill time | scoring s | scoring / prefill "
        "| peak RSS MB | × prefill peak |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for length, row in result["lengths"].items():
        base_peak = row["memory"]["prefill"]["peak_rss_mb"]
        base_wall = row["time"]["prefill"]["wall_s_median"]
        for config in CONFIGS:
            t, m = row["time"][config], row["memory"][config]
            lines.append(
                f"| {length} | {config} | {t['wall_s_median']:.2f} | {t['time_ratio_to_prefill']:.3f} | "
                f"{t['score_s_median']:.3f} | {t['score_s_median'] / base_wall:.1%} | "
                f"{m['peak_rss_mb']:.0f} | {m['peak_rss_mb'] / base_peak:.3f} |"
            )
    goal = result["goal_at_max_length"]
    lines += [
        "",
        f"Goal at {goal['tokens']} tokens: under 1.20× time and 1.10× peak memory for every estimator. "
        f"Worst estimator: {goal['worst_time_ratio']:.3f}× time ({goal['worst_time_config']}), "
        f"{goal['worst_memory_ratio']:.3f}× peak memory ({goal['worst_memory_config']}): "
        f"{'met' if goal['met'] else 'NOT met'}.",
        "",
        "![time ratio](time_ratio.png)",
        "",
    ]
    (out_dir / "results.md").write_text("\n".join(lines))
    plot(result, out_dir / "time_ratio.png")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = list(result["lengths"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / (len(CONFIGS) - 1)
    for k, config in enumerate(CONFIGS[1:]):
        xs = [i + k * width for i in range(len(lengths))]
        axes[0].bar(
            xs,
            [result["lengths"][n]["time"][config]["time_ratio_to_prefill"] for n in lengths],
            width,
            label=config.removeprefix("prefill+"),
        )
        axes[1].bar(
            xs,
            [
                result["lengths"][n]["memory"][config]["peak_rss_mb"]
                / result["lengths"][n]["memory"]["prefill"]["peak_rss_mb"]
                for n in lengths
            ],
            width,
        )
    for ax, title, goal in (
        (axes[0], "time / plain prefill", 1.2),
        (axes[1], "peak RSS / plain prefill", 1.1),
    ):
        ax.axhline(1.0, color="black", lw=0.8)
        ax.axhline(goal, color="red", ls="--", lw=0.8, label=f"goal {goal}×")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(lengths))], [f"{n} tok" for n in lengths])
        ax.set_title(title)
        ax.set_ylim(0.9, max(goal + 0.05, ax.get_ylim()[1]))
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"RC scoring overhead, {result['meta']['model']}, window {result['meta']['window']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help=f"model id or path (default: {DEFAULT_MODEL})")
    parser.add_argument("--lengths", default="1024,2048,4096")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--worker", choices=("time", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker == "time":
        print(json.dumps(worker_time(args)))
        return
    if args.worker == "memory":
        print(json.dumps(worker_memory(args)))
        return

    common = ["--window", str(args.window), "--repeats", str(args.repeats), "--seed", str(args.seed)]
    if args.model:
        common += ["--model", args.model]
    lengths: dict[str, dict] = {}
    for n in [int(v) for v in args.lengths.split(",")]:
        print(f"[{n} tokens] timing {len(CONFIGS)} configurations…", file=sys.stderr, flush=True)
        timing = spawn(["--worker", "time", "--length", str(n)], common)
        memory = {}
        for config in CONFIGS:
            print(f"[{n} tokens] peak memory of {config}…", file=sys.stderr, flush=True)
            memory[config] = spawn(
                ["--worker", "memory", "--length", str(n), "--config", config], common, env=MEMORY_ENV
            )
        lengths[str(n)] = {"time": timing, "memory": memory}

    top = lengths[max(lengths, key=int)]
    est = [f"prefill+{e}" for e in stats.ESTIMATORS]
    worst_t = max(est, key=lambda c: top["time"][c]["time_ratio_to_prefill"])
    worst_m = max(est, key=lambda c: top["memory"][c]["peak_rss_mb"])
    base_peak = top["memory"]["prefill"]["peak_rss_mb"]
    goal = {
        "tokens": max(int(v) for v in lengths),
        "worst_time_config": worst_t,
        "worst_time_ratio": top["time"][worst_t]["time_ratio_to_prefill"],
        "worst_memory_config": worst_m,
        "worst_memory_ratio": top["memory"][worst_m]["peak_rss_mb"] / base_peak,
    }
    goal["met"] = goal["worst_time_ratio"] < 1.2 and goal["worst_memory_ratio"] < 1.1
    result = {
        "meta": {
            "model": args.model or DEFAULT_MODEL,
            "window": args.window,
            "repeats": args.repeats,
            "seed": args.seed,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "commit": git_commit(paths=("src", "benchmarks", "pyproject.toml")) or "unknown",
            "date": time.strftime("%Y-%m-%d"),
            "command": "make bench  (= .venv/bin/python benchmarks/foundation/bench_logits.py)",
        },
        "lengths": lengths,
        "goal_at_max_length": goal,
    }
    write_report(result, args.out)
    print(f"wrote {args.out / 'results.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
