"""The hypothesis fuzz of issue 30, over every command the parser has (the newer ones too: ``cite``,
``generate``, ``bench decoding``, ``bench citations``, ``heads at2``) and corpus mode's flags: a value
outside an option's domain or choices is one line and exit code 2, never a traceback; a value inside
is accepted. Nothing runs: the parser is stopped once it has parsed, and corpus mode's faults are all
refused before any model loads (``--model`` names none)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rcstat import cli
from rcstat.cli.common import Parser
from tests.cli.test_hardening import FUZZ, VALUES, run
from tests.helpers import write_jsonl

PARSED = 99  # the exit code of a command line that parsed (the command would have run)


def options(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(command, option, action)`` of every option of every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options(sub, (*path, name))
        elif action.option_strings and path:
            yield path, action.option_strings[0], action


def is_number_type(action: argparse.Action) -> bool:
    name = getattr(action.type, "__qualname__", "")
    return action.type is int or name.startswith(("number.", "numbers."))


EVERY = list(options(cli.build_parser()))
NUMERIC = [case for case in EVERY if is_number_type(case[2])]
CHOICES = [case for case in EVERY if case[2].choices is not None]


def declared(parse) -> dict:
    """The domain an option type of :func:`rcstat.cli.options.number` (or ``numbers``) was made with."""
    return {
        n: c.cell_contents for n, c in zip(parse.__code__.co_freevars, parse.__closure__ or (), strict=True)
    }


def in_domain(text: str, action: argparse.Action) -> bool:
    """Whether ``text`` is a value of the option's declared domain (a list of them for ``numbers``)."""
    if action.type is int:
        try:
            int(text)
        except ValueError:
            return False
        return True
    domain = declared(action.type)
    if "one" in domain:  # a comma-separated list, each item in the domain of `one`
        items = [v.strip() for v in text.split(",")]
        return all(items) and all(one_value(v, declared(domain["one"])) for v in items)
    return one_value(text, domain)


def one_value(text: str, domain: dict) -> bool:
    try:
        value = domain["kind"](text)
    except ValueError:
        return False
    low, high = domain["low"], domain["high"]
    above_low = low is None or (value > low if domain.get("low_open") else value >= low)
    below_high = high is None or (value < high if domain["high_open"] else value <= high)
    return math.isfinite(value) and above_low and below_high


def parse_only(argv: list[str]) -> tuple[int, str]:
    """``run(argv)`` with the command stopped once its flags parsed (exit code :data:`PARSED`)."""
    original = Parser.parse_args

    def parsed(self, args=None, namespace=None):
        original(self, args, namespace)
        raise SystemExit(PARSED)

    with mock.patch.object(Parser, "parse_args", parsed):
        return run(argv)


def check(code: int, err: str, option: str, accepted: bool) -> None:
    lines = err.strip().splitlines()
    assert "Traceback" not in err, err
    if accepted:  # parsed, or refused for another flag it lacks (a required one), never this value
        assert code == PARSED or (code == 2 and f"argument {option}" not in err), err
    else:
        assert code == 2 and len(lines) == 1 and f"argument {option}: " in lines[0], err


@settings(max_examples=FUZZ, deadline=None)
@given(case=st.sampled_from(NUMERIC), value=VALUES)
def test_fuzz_every_numeric_option_of_every_command(case, value) -> None:
    command, option, action = case
    code, err = parse_only([*command, f"{option}={value}"])
    check(code, err, option, in_domain(value, action))


@settings(max_examples=FUZZ, deadline=None)
@given(case=st.sampled_from(CHOICES), value=st.text(max_size=12) | st.sampled_from(["text", "JSON", "html"]))
def test_fuzz_every_choice_option_of_every_command(case, value) -> None:
    command, option, action = case
    try:
        accepted = (action.type(value) if action.type else value) in action.choices
    except (ValueError, argparse.ArgumentTypeError):
        accepted = False
    code, err = parse_only([*command, f"{option}={value}"])
    check(code, err, option, accepted)


def test_the_fuzz_reaches_the_newer_commands() -> None:
    fuzzed = {(" ".join(c), o) for c, o, _ in NUMERIC + CHOICES}
    for wanted in [
        ("cite", "--margin"),
        ("cite", "--min-support"),
        ("cite", "--min-overlap"),
        ("generate", "--budget"),
        ("generate", "--interval"),
        ("bench decoding", "--timing-tokens"),
        ("bench decoding", "--compression-ratio"),
        ("bench citations", "--margin"),
        ("heads at2", "--ablations"),
        ("heads at2", "--ridge"),
        ("bench attribution", "--context-tokens"),
        ("attribute", "--workers"),
        ("attribute", "--threads"),
        ("attribute", "--granularity"),
    ]:
        assert wanted in fuzzed


# ---- corpus mode: a valid command line and one fault, refused before any model loads --------------

FAULTS = {  # fault -> (extra flags, or a marker, and a piece of the one line that refuses it)
    "no output": ([], "a corpus is attributed to an output file (--output)"),
    "query": (["--query", "Who?"], "each row of a corpus holds its own; leave it out with --data (--query)"),
    "response": (["--response", "Ada."], "leave it out with --data (--response)"),
    "span text": (["--span-text", "Ada"], "leave it out with --data (--span-text)"),
    "span": (["--span", "0:3"], "leave it out with --data (--span)"),
    "top sources": (["--top-sources", "2"], "leave it out with --data (--top-sources)"),
    "html": (["--format", "html"], "a corpus is attributed to JSONL, one row per line (--format)"),
    "threads alone": (["--threads", "2"], "threads are set per Ray worker"),
    "output is the corpus": ([], "is the --data file; refusing to overwrite an input (--output)"),
    "corpus is the errors file": ([], "the output's errors file would overwrite the corpus"),
    "bad workers": ([], "argument --workers: "),
    "bad threads": ([], "argument --threads: "),
}


WORKERS = next(action for _, option, action in NUMERIC if option == "--workers")


@st.composite
def corpus_command(draw):
    """A fault, the flags of a corpus command line that holds it (in any order), and the refusal."""
    fault = draw(st.sampled_from(sorted(FAULTS)))
    extra, expected = FAULTS[fault]
    groups = [extra] if extra else []  # each a flag with its value
    workers = 0 if fault == "threads alone" else draw(st.integers(0, 2))
    if workers:
        groups.append(["--workers", str(workers)])
        if draw(st.booleans()):
            groups.append(["--threads", str(draw(st.integers(1, 4)))])
    groups.append(["--granularity", draw(st.sampled_from(["token", "sentence", "chunk"]))])
    if fault != "html":
        groups.append(["--format", draw(st.sampled_from(["json", "table"]))])
    if draw(st.booleans()):
        groups.append(["--top-k", str(draw(st.integers(1, 20)))])
    bad = draw(VALUES.filter(lambda v: not in_domain(v, WORKERS)))  # not a count: not a thread count
    if fault == "bad workers":
        groups.append([f"--workers={bad}"])
    if fault == "bad threads":
        groups += [["--workers", "1"], [f"--threads={bad}"]]
    return fault, [flag for group in draw(st.permutations(groups)) for flag in group], expected


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=corpus_command())
def test_fuzz_corpus_mode_flags(case, tmp_path_factory) -> None:
    fault, flags, expected = case
    tmp: Path = tmp_path_factory.mktemp("corpus")
    name = "out.errors.jsonl" if fault == "corpus is the errors file" else "corpus.jsonl"
    data = write_jsonl(tmp / name, [{"id": 1, "query": "Who?", "context": "Ada wrote it."}])
    output = {"no output": [], "output is the corpus": ["--output", data]}.get(
        fault, ["--output", str(tmp / "out.jsonl")]
    )
    code, err = run(["attribute", "--data", data, *output, *flags, "--model", str(tmp / "no-model")])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0] and "no-model" not in lines[0], err  # refused before the model
    assert [p.name for p in tmp.iterdir()] == [name]  # nothing written
