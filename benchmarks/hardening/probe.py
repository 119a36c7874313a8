"""Issue 30's probe, rerun: every command given the kinds of bad input the issue found (data lost or
corrupted, tracebacks, silent acceptance, late refusal, misleading lines, rows too long, Ray), in
this process on a tiny random checkpoint (the default model's tokenizer, 512 positions). Each case
says what it expects — refused in one line with exit code 2 (``before model``: the model never
loads), or run with exit code 0 and what it must say — and the table says what happened.

    python benchmarks/hardening/probe.py   # a markdown table; probe.md holds one run

Ctrl-C sent to a running command needs a child process: ``tests/cli/test_signals.py`` does that.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FACTS = "The Rhine rises in the Swiss Alps. Marie Curie won two Nobel Prizes. Honey never spoils. "
QUOTESUM = {
    "question": "Who?",
    "summary": "[ 1 Ada wrote it. ] [ 2 Bo read it. ]",
    "title1": "A",
    "source1": "Ada wrote it.",
    "title2": "B",
    "source2": "Bo read it.",
}
ROW = {"id": 1, "query": "Who?", "context": "Ada wrote it. Bo read it.", "response": "Ada."}
KV = {"context": FACTS, "question": "Where?", "answers": ["Alps"]}
LONG = "word " * 600


@dataclass
class Case:
    command: str
    kind: str
    what: str
    argv: str  # {t}: a fresh directory, {m}: the model, {ro}: a read-only one, {port}: a silent port
    expect: str  # a piece of the error line (refused) or of stdout + stderr (ran)
    files: dict = field(default_factory=dict)  # name -> rows (JSONL) or text, written in {t} first
    code: int = 2
    before_model: bool = False  # the model must not load
    after: Callable[[Path], bool] = field(default=lambda tmp: True)  # what must hold afterwards


def read_only(tmp: Path) -> str:
    """A directory that cannot be written (``os.access`` says so too: the probe may run as root)."""
    directory = tmp / "ro"
    directory.mkdir()
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    LOCKED.append(directory)
    return str(directory)


def silent_port() -> str:
    """An address that accepts connections and never answers (as a firewall or a proxy can)."""
    server = socket.socket()
    server.bind(("0.0.0.0", 0))
    server.listen()
    SERVERS.append(server)
    return f"127.0.0.1:{server.getsockname()[1]}"


SERVERS: list[socket.socket] = []
LOCKED: list[Path] = []
C, Q = "--context {t}/c.txt --query Who?", "--dataset quotesum --data {t}/q.jsonl"
AT2 = "heads at2 --dataset quotesum --data q.jsonl --output w.json"
CORPUS = "attribute --data {t}/c.jsonl --output {t}/o.jsonl --model {m}"
DECODE = "bench decoding --data {t}/d.jsonl --press knorm --budget 16 --interval 4 --max-new-tokens 4"
TEXT, ONE, QS = {"c.txt": FACTS}, {"c.jsonl": [ROW]}, {"q.jsonl": [QUOTESUM]}
TOO_LONG = {"q.jsonl": [QUOTESUM, {**QUOTESUM, "source2": LONG}]}
REFUSED = "refusing to overwrite an input"
# fmt: off
CASES = [
    # ---- data lost or corrupted: nothing given is overwritten, corpus rows never glued or lost
    Case("attribute", "data", "--output equal to --data", "attribute --data {t}/c.jsonl --output {t}/c.jsonl",
         REFUSED, ONE, before_model=True),
    Case("generate", "data", "--output equal to --context", f"generate {C} --output {{t}}/c.txt", REFUSED,
         TEXT, before_model=True),
    Case("cite", "data", "--output equal to --context", f"cite {C} --output {{t}}/c.txt", REFUSED, TEXT,
         before_model=True),
    Case("bench citations", "data", "--output equal to --data", f"bench citations {Q} --output {{t}}/q.jsonl",
         REFUSED, QS, before_model=True),
    Case("heads at2", "data", "--output equal to --data",
         "heads at2 --dataset quotesum --data {t}/q.jsonl --output {t}/q.jsonl", REFUSED, QS,
         before_model=True),
    Case("attribute (corpus)", "data", "a corpus named like its output's errors file",
         "attribute --data {t}/o.errors.jsonl --output {t}/o.jsonl --model {m}", "would overwrite the corpus",
         {"o.errors.jsonl": [ROW]}, before_model=True),
    Case("attribute (corpus)", "data", "an output named errors.jsonl, run twice",
         "attribute --data {t}/c.jsonl --output {t}/errors.jsonl --model {m}", '"already_done": 1', ONE, 0,
         after=lambda t: len((t / "errors.jsonl").read_text().splitlines()) == 1),
    Case("attribute (corpus)", "data", "a resume after a last row without its newline", CORPUS, '"done": 1',
         {"c.jsonl": [ROW, {**ROW, "id": 2}], "o.jsonl": json.dumps({"id": 1, "sources": []})}, 0,
         after=lambda t: [json.loads(x)["id"] for x in (t / "o.jsonl").read_text().splitlines()] == [1, 2]),
    # ---- tracebacks
    Case("compress", "traceback", "--press kvzip",
         f"compress {C} --press kvzip --model {{m}} --max-new-tokens 2", "realised ratio", TEXT, 0),
    Case("attribute", "traceback", "a base model (no chat template)",
         f"attribute {C} --response Curie. --model {{base}}", "Curie", TEXT, 0),
    Case("bench kv", "traceback", "--output in a read-only directory",
         "bench kv --data {t}/kv.jsonl --output {ro}/run --model {m}", "cannot write in", {"kv.jsonl": [KV]},
         before_model=True),
    Case("attribute (corpus)", "traceback", "--ray-address auto, no cluster", f"{CORPUS} --ray-address auto",
         "cannot start or reach Ray", ONE),
    # ---- silent acceptance
    Case("compress", "silent", "a ratio with --press none",
         f"compress {C} --press none --compression-ratio 0.5 --model {{m}}", "--press none keeps the full",
         TEXT, before_model=True),
    Case("cite", "silent", "--margin -1", "cite --context c.txt --query q --margin -1",
         "in [0, ∞), got '-1'"),
    Case("attribute (corpus)", "silent", "--threads without --workers", f"{CORPUS} --threads 2",
         "threads are set per Ray worker", ONE, before_model=True),
    Case("bench attribution", "silent", "--context-tokens 100000 on a two-row file",
         f"bench attribution {Q} --context-tokens 100000 --model {{m}}", "its passages fill at most",
         {"q.jsonl": [QUOTESUM, {**QUOTESUM, "question": "Else?"}]}, before_model=True),
    Case("heads at2", "silent", "--ridge 0", f"{AT2} --ridge 0", "expected a number in (0, ∞), got '0'"),
    # ---- late refusal
    Case("generate", "late", "--output in a missing directory",
         f"generate {C} --output {{t}}/no/g.html --model {{m}}", "does not exist", TEXT, before_model=True),
    Case("heads at2", "late", "--output in a read-only directory",
         "heads at2 --dataset quotesum --data {t}/q.jsonl --output {ro}/w.json --model {m}",
         "cannot write in", QS, before_model=True),
    Case("heads at2", "late", "--ablations 1", f"{AT2} --ablations 1", "expected an integer in [2, ∞)"),
    Case("bench attribution", "late", "--ablations 1",
         "bench attribution --dataset quotesum --data q --ablations 1", "expected an integer in [2, ∞)"),
    Case("bench decoding", "late", "first prompt + --timing-tokens past the model",
         f"{DECODE} --timing-tokens 500 --output {{t}}/run --model {{m}}", "allows 512 (--timing-tokens)",
         {"d.jsonl": [{"context": FACTS * 2, "question": "Repeat it."}]},
         after=lambda t: not (t / "run" / "log.jsonl").exists()),
    Case("generate", "late", "prompt + --max-new-tokens past the model",
         f"generate {C} --press none --max-new-tokens 500 --model {{m}}", "the model allows 512", TEXT),
    # ---- misleading or extra lines
    Case("heads at2", "misleading", "--ridge inf", f"{AT2} --ridge inf", "a number in (0, ∞), got 'inf'"),
    Case("attribute", "misleading", "a context over the model's length (no tokenizer warning first)",
         f"attribute {C} --response x --model {{m}}", "the model allows 512", {"c.txt": LONG}),
    Case("bench citations", "misleading", "--margin 1e308 (strict JSON)",
         f"bench citations {Q} --margin 1e308 --output {{t}}/c.json --model {{m}}", "wrote", QS, 0,
         after=lambda t: "NaN" not in (t / "c.json").read_text()),
    Case("compress", "misleading", "--press observed_attention",
         f"compress {C} --press observed_attention --model {{m}} --max-new-tokens 2",
         "reads the attention weights", TEXT, 0),
    Case("attribute (corpus)", "misleading", "--ray-address that does not answer (5 s)",
         f"{CORPUS} --ray-address {{port}}", "no answer from", ONE),
    # ---- rows too long for the model: skipped and reported
    Case("bench kv", "too long", "one row of two too long",
         "bench kv --data {t}/kv.jsonl --press streaming_llm --max-new-tokens 2 --model {m}",
         "record 2 skipped: needs", {"kv.jsonl": [KV, {**KV, "context": LONG}]}, 0),
    Case("bench decoding", "too long", "one row of two too long", f"{DECODE} --model {{m}}",
         "record 2 skipped: needs",
         {"d.jsonl": [{"context": FACTS * 2, "question": "Q?"}, {"context": LONG, "question": "Q?"}]}, 0),
    Case("bench attribution", "too long", "one row of two too long", f"bench attribution {Q} --model {{m}}",
         "record 2 skipped: needs", TOO_LONG, 0),
    Case("bench citations", "too long", "one row of two too long", f"bench citations {Q} --model {{m}}",
         "record 2 skipped: needs", TOO_LONG, 0),
]
# fmt: on


def command_line(case: Case, tmp: Path, model: str) -> list[str]:
    """The case's files written in ``tmp`` and its command line filled in."""
    for name, body in case.files.items():
        rows = "".join(json.dumps(r) + "\n" for r in body) if isinstance(body, list) else body
        (tmp / name).write_text(rows)
    given = {"t": str(tmp), "m": model}
    given |= {"ro": read_only(tmp)} if "{ro}" in case.argv else {}
    given |= {"port": silent_port()} if "{port}" in case.argv else {}
    given |= {"base": base(tmp, model)} if "{base}" in case.argv else {}
    return shlex.split(case.argv.format(**given))


def base(tmp: Path, model: str) -> str:
    """The checkpoint without its chat template, as a base model ships."""
    import shutil

    path = tmp / "base"
    shutil.copytree(model, path)
    (path / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return str(path)


def checkpoint(directory: Path) -> str:
    """A 3-layer random Llama with the default model's tokenizer, 512 positions."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rcstat.models import embedded

    tokenizer = AutoTokenizer.from_pretrained(embedded.prepare_default_model())
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def run(case: Case, tmp: Path, model: str) -> tuple[bool, str, float]:
    """Whether the case held, what happened (in a few words), and the seconds it took."""
    from rcstat import cli

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    access = os.access
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(os, "access", lambda p, mode: Path(p) not in LOCKED and access(p, mode))
        )
        if case.before_model:
            import rcstat.models.loading as loading

            stack.enter_context(
                mock.patch.object(loading, "load_model", side_effect=AssertionError("loaded"))
            )
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        argv = command_line(case, tmp, model)
        try:
            code = cli.main(argv)
            if case.what.endswith("run twice"):
                code = cli.main(argv)
        except SystemExit as exit_info:
            code = exit_info.code
        except Exception as error:  # a traceback the user would see
            return False, f"traceback: {type(error).__name__}: {error}", time.perf_counter() - start
    seconds = time.perf_counter() - start
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    said = errors[-1] if errors else (lines[-1] if lines else out.getvalue().strip()[:80])
    if case.code == 2:
        held = code == 2 and len(errors) == 1 and lines[-1] == errors[0] and case.expect in errors[0]
    else:
        held = code == case.code and not errors and case.expect in out.getvalue() + err.getvalue()
    return held and case.after(tmp) and "Traceback" not in err.getvalue(), f"exit {code}: {said}", seconds


def main() -> int:
    os.environ["RCSTAT_RAY_CONNECT_SECONDS"] = "5"
    rows = []
    with tempfile.TemporaryDirectory() as root:
        model = checkpoint(Path(root) / "tiny")
        for number, case in enumerate(CASES):
            tmp = Path(root) / f"case{number}"
            tmp.mkdir()
            held, said, seconds = run(case, tmp, model)
            for path in tmp.rglob("*"):  # read-only directories back to writable, to clean up
                if path.is_dir():
                    path.chmod(stat.S_IRWXU)
            said = said.replace(root, "…").replace("|", "\\|")
            verdict = "ok" if held else "FAIL"
            rows.append(
                f"| {case.command} | {case.kind} | {case.what} | {verdict} | {seconds:.1f} | {said} |"
            )
    for server in SERVERS:
        server.close()
    print("| command | kind | input | held | s | what it said (the error line, or the last line) |")
    print("|---|---|---|---|---:|---|")
    print("\n".join(rows))
    failed = sum("| FAIL |" in row for row in rows)
    print(f"\n{len(rows) - failed} of {len(rows)} cases held.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
