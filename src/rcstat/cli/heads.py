"""``rcstat heads``: head profiles for attribution — calibrate one, plot it, and draw one head's X and Y."""

from __future__ import annotations

import argparse

from rcstat.cli.common import group, say
from rcstat.cli.options import (
    NON_NEGATIVE,
    POSITIVE,
    add_model,
    add_scoring,
    add_slice,
    int_pair,
    model_source,
    number,
    scoring,
)
from rcstat.cli.progress import load
from rcstat.evaluation.attribution.data import Dataset
from rcstat.options import choices


def register(sub) -> None:
    actions = group(
        sub,
        "heads",
        "attention-head profiles for attribution",
        "ACTION",
        "rcstat heads calibrate --dataset verigran --data dev.jsonl --output heads.json",
    )
    cal = actions.add_parser(
        "calibrate",
        help="average every head's expected RC over a dev set and save the profile (JSON)",
        description="One pass per example: each head's E[RC] of the context against the response, averaged.",
        epilog="examples:\n  rcstat heads calibrate --dataset verigran --data dev.jsonl --output heads.json\n"
        '  rcstat attribute --context notes.txt --query "…" --profile heads.json',
    )
    _data(cal)
    cal.add_argument("--output", required=True, help="profile JSON to write")
    add_scoring(cal, only=("estimator", "top_k"))
    cal.add_argument("--limit", type=POSITIVE, help="use the first N examples only")
    add_model(cal)
    cal.add_argument("--plot", help="also write the layer × head heatmap of the profile (PNG, matplotlib)")
    cal.set_defaults(func=run_calibrate)

    plot = actions.add_parser(
        "plot",
        help="a head profile as a layer × head heatmap (PNG; needs matplotlib)",
        description="Mean expected RC of every head, the top-K heads boxed.",
        epilog="examples:\n  rcstat heads plot heads.json --output heads.png",
    )
    plot.add_argument("profile", help="head profile JSON (rcstat heads calibrate)")
    plot.add_argument("--output", required=True, help="image to write (PNG)")
    add_scoring(plot, only=("top_k",))
    plot.set_defaults(func=run_plot)

    hist = actions.add_parser(
        "histogram",
        help="cross- (X) vs self-contextualization (Y) logits of one head on one example (PNG)",
        description="One pass over an example of a dataset; histograms of the head's logits from the "
        "response to the context (X) and to the response itself (Y), the picture of RC.",
        epilog="examples:\n"
        "  rcstat heads histogram --dataset quotesum --data dev.jsonl --example 0 --output xy.png",
    )
    _data(hist)
    hist.add_argument("--example", type=NON_NEGATIVE, default=0, help="index of the example (file order)")
    hist.add_argument(
        "--head", type=int_pair("LAYER:HEAD"), help="LAYER:HEAD (default: the example's top head)"
    )
    add_scoring(hist, only=("estimator",))
    add_model(hist)
    hist.add_argument("--output", required=True, help="image to write (PNG)")
    hist.set_defaults(func=run_histogram)

    at2 = actions.add_parser(
        "at2",
        help="train AT2's head weights (the learned single-pass baseline) from ablations (JSON)",
        description="Per example, random ablations (each chunk dropped with probability 1/2) and the fall of "
        "the response's log-probability; one weight per head fitted by ridge regression (arXiv 2504.13752).",
        epilog="examples:\n  rcstat heads at2 --dataset quotesum --data d.jsonl --limit 40 --output w.json\n"
        "  rcstat bench attribution --dataset quotesum --data dev.jsonl --method at2 --head-weights w.json",
    )
    _data(at2)
    at2.add_argument("--output", required=True, help="head weights JSON to write")
    add_slice(at2, strict=False)  # --strict comes with the data flags
    at2.add_argument(
        "--ablations", type=number(int, low=2), default=16, help="random ablations per example (2 or more)"
    )
    at2.add_argument(
        "--ridge", type=number(float, low=0, low_open=True), default=1.0, help="ridge penalty (> 0)"
    )
    at2.add_argument("--seed", type=int, default=0, help="seed of the ablation masks")
    add_model(at2)
    at2.set_defaults(func=run_at2)


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=choices(Dataset), required=True, help="the format of --data")
    parser.add_argument("--data", required=True, help="JSONL in the dataset's format (- for stdin)")
    parser.add_argument("--strict", action="store_true", help="fail on the first record that cannot be used")


def run_calibrate(args: argparse.Namespace) -> int:
    from rcstat.attribution.attributor import Attributor
    from rcstat.cli.common import check_output
    from rcstat.cli.progress import progress
    from rcstat.evaluation.attribution.data import load_examples

    check_output(args.output)
    check_output(args.plot, "plot")
    examples = load_examples(args.dataset, args.data, args.limit, strict=args.strict).examples
    name, model, tokenizer = load(model_source(args))
    profile = Attributor(model, tokenizer, scoring=scoring(args)).calibrate(
        examples, name, progress(len(examples), "examples")
    )
    profile.save(args.output)
    top = ", ".join(f"{la}:{h}" for la, h in profile.top(5))
    print(f"wrote {args.output}: {len(examples)} examples, top heads (layer:head) {top}")
    if args.plot:
        from rcstat.render.plots import plot_profile

        plot_profile(profile, args.plot, args.top_k)
        say(f"wrote {args.plot}")
    return 0


def run_at2(args: argparse.Namespace) -> int:
    from rcstat.cli.common import check_output
    from rcstat.cli.progress import progress
    from rcstat.evaluation.attribution.at2 import train_at2
    from rcstat.evaluation.attribution.data import load_examples

    check_output(args.output)
    examples = load_examples(args.dataset, args.data, args.limit, args.skip, args.strict).examples
    _, model, tokenizer = load(model_source(args))
    weights = train_at2(
        model, tokenizer, examples, args.ablations, args.ridge, args.seed, progress(len(examples), "examples")
    )
    weights.save(args.output)
    print(f"wrote {args.output}: {len(examples)} examples × {args.ablations} ablations")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from rcstat.attribution.profile import HeadProfile
    from rcstat.cli.common import check_output
    from rcstat.render.plots import plot_profile

    check_output(args.output)
    plot_profile(HeadProfile.load(args.profile), args.output, args.top_k)
    say(f"wrote {args.output}")
    return 0


def run_histogram(args: argparse.Namespace) -> int:
    from rcstat.attribution.features import build_task
    from rcstat.attribution.profile import head_samples
    from rcstat.cli.common import check_output
    from rcstat.errors import RCStatError
    from rcstat.evaluation.attribution.data import load_examples
    from rcstat.render.plots import plot_contextualization, pyplot

    pyplot()  # fail before loading anything when matplotlib is missing
    check_output(args.output)
    examples = load_examples(args.dataset, args.data, strict=args.strict).examples
    if args.example >= len(examples):
        raise RCStatError(
            f"there are {len(examples)} examples; example {args.example} is not one", option="example"
        )
    example = examples[args.example]
    name, model, tokenizer = load(model_source(args))
    task = build_task(model, tokenizer, list(example.chunks), example.query, example.response)
    head, x, y, rc = head_samples(model, task, args.estimator, args.head)
    title = f"{name}, {args.dataset} example {args.example}\n"
    plot_contextualization(head, x, y, rc, args.estimator, args.output, title)
    print(f"wrote {args.output}: layer {head[0]} head {head[1]}")
    return 0
