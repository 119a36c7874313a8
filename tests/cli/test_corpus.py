"""Corpus attribution and benchmark sweeps, in one process and on a local Ray cluster (``num_cpus=2``).

On Ray the output must equal the single-process output byte for byte (tiny model and the real one),
a worker killed mid-run must lose no row and duplicate none, an interrupted run must resume without
duplicates, and a machine without the extra gets one line saying how to install it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from rcstat import cli
from rcstat.attribution import corpus
from rcstat.distributed import HERE, Workers, map_items
from rcstat.errors import RCStatError
from rcstat.models.loading import ModelSource
from tests.cli.test_errors import fail
from tests.helpers import write_jsonl

pytestmark = pytest.mark.realmodel
ray = pytest.importorskip("ray")  # the `dev` extra installs it; `make test` always runs these
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import `tests`

FACTS = ["The Rhine rises in the Alps.", "Marie Curie won two Nobel Prizes.", "Honey never spoils."]


def rows(n: int = 6) -> list[dict]:
    """``n`` good rows (text contexts and chunk lists, given and generated responses, spans)."""
    out = []
    for i in range(n):
        row = {"id": f"r{i}", "query": f"What about item {i}?"}
        if i % 2:
            row["sources"] = [*FACTS, f"Item {i} is blue."]
        else:
            row["context"] = " ".join(FACTS) + f" Item {i} is blue."
        if i % 3:
            row["response"] = f"Item {i} is blue, and honey never spoils."
        if i % 3 == 2:
            row["spans"] = [[0, 4], [7, 11]]
        out.append(row)
    return out


BAD = [
    ({"id": "no-query", "context": "Some text."}, "missing field `query`"),
    ({"id": "two", "query": "q", "context": "a", "sources": ["b"]}, "give either `context` or `sources`"),
    ({"id": "long", "query": "q", "context": "word " * 600, "response": "x"}, "the model allows 512"),
    ({"id": "span", "query": "q", "context": "a b", "response": "abc", "spans": [[1, 9]]}, "outside"),
    ({"id": "r0", "query": "q", "context": "a"}, "id 'r0' is used by an earlier row"),
]


def run_corpus(data: str, out: Path, checkpoint: str, workers: Workers = HERE, **kw) -> dict:
    return corpus.attribute_corpus(data, out, ModelSource(checkpoint), workers=workers, **kw)


def ids(path: Path) -> list:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


# ---- Ray started by rcstat (first: no cluster is up yet) -------------------------------------------


def test_workers_2_write_what_one_process_writes(tiny_checkpoint, tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "corpus.jsonl", rows() + [bad for bad, _ in BAD])
    (tmp_path / "one").mkdir(), (tmp_path / "ray").mkdir()
    argv = ["attribute", "--data", data, "--model", tiny_checkpoint, "--output"]
    assert cli.main([*argv, str(tmp_path / "one" / "out.jsonl")]) == 0
    one = json.loads(capsys.readouterr().out)
    assert cli.main([*argv, str(tmp_path / "ray" / "out.jsonl"), "--workers", "2"]) == 0
    on_ray = json.loads(capsys.readouterr().out)
    assert not ray.is_initialized()  # the cluster rcstat started is gone
    assert one["done"] == on_ray["done"] == 6 and one["errors"] == on_ray["errors"] == len(BAD)
    for name in ("out.jsonl", "out.errors.jsonl"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    errors = [json.loads(line) for line in (tmp_path / "one" / "out.errors.jsonl").read_text().splitlines()]
    assert [e["line"] for e in errors] == list(range(7, 7 + len(BAD)))  # 1-based lines of the input
    for error, (_, reason) in zip(errors, BAD, strict=True):
        assert reason in error["error"]
    first = json.loads((tmp_path / "one" / "out.jsonl").read_text().splitlines()[0])
    assert first["id"] == "r0" and first["sources"] and first["response"]  # generated: r0 has none
    spans = json.loads((tmp_path / "one" / "out.jsonl").read_text().splitlines()[2])
    targets = [s["target"]["text"] for s in spans["spans"]]  # each span widened to whole tokens
    assert "Item" in targets[0] and "is b" in targets[1]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster of two CPUs for the rest of the module (rcstat uses it, not starts one)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def one_thread():
    """One torch thread here too, as each worker runs (``--threads 1``): the same sums in the same order,
    so that results agree to the last bit."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- nothing lost, nothing twice -------------------------------------------------------------------


class KillOnce:
    """A worker factory whose worker kills its own process (SIGKILL) the first time it meets ``victim``."""

    def __init__(self, inner, victim: str, marker: str) -> None:
        self.inner, self.victim, self.marker = inner, victim, marker

    def __call__(self):
        run = self.inner()

        def item(it):
            if it.id == self.victim and not os.path.exists(self.marker):
                Path(self.marker).touch()
                os.kill(os.getpid(), signal.SIGKILL)
            return run(it)

        return item


def test_a_killed_worker_loses_no_row_and_duplicates_none(cluster, tiny_checkpoint, tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "corpus.jsonl", rows(8))
    expected = tmp_path / "one.jsonl"
    run_corpus(data, expected, tiny_checkpoint)
    marker = tmp_path / "killed"
    real = corpus.AttributorFactory
    monkeypatch.setattr(corpus, "AttributorFactory", lambda *a: KillOnce(real(*a), "r3", str(marker)))
    out = tmp_path / "out.jsonl"
    summary = run_corpus(data, out, tiny_checkpoint, Workers(2))
    assert marker.exists()  # a worker did die, mid-run
    assert summary["done"] == 8 and out.read_bytes() == expected.read_bytes()


def test_an_interrupted_run_resumes_without_duplicates(cluster, tiny_checkpoint, tmp_path) -> None:
    data = write_jsonl(tmp_path / "corpus.jsonl", rows(6))
    expected = tmp_path / "one.jsonl"
    run_corpus(data, expected, tiny_checkpoint)

    def interrupt_after_two(total: int, unit: str):
        def update(done: int, _total: int) -> None:
            if done == 2:
                raise KeyboardInterrupt

        return update

    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_corpus(data, out, tiny_checkpoint, Workers(2), progress=interrupt_after_two)
    assert ids(out) == ["r0", "r1"]
    with out.open("a") as handle:
        handle.write('{"id": "r2", "model"')  # the row an interruption cut short is written again
    summary = run_corpus(data, out, tiny_checkpoint, Workers(2))
    assert summary["already_done"] == 2 and summary["done"] == 4
    assert out.read_bytes() == expected.read_bytes()


def test_the_real_model_on_two_workers_equals_one_process(cluster, one_thread, tmp_path) -> None:
    data = write_jsonl(tmp_path / "corpus.jsonl", rows(3))
    one, two = tmp_path / "one" / "out.jsonl", tmp_path / "two" / "out.jsonl"
    one.parent.mkdir(), two.parent.mkdir()
    run_corpus(data, one, None)
    run_corpus(data, two, None, Workers(2))
    assert one.read_bytes() == two.read_bytes() and len(ids(one)) == 3


def test_a_running_cluster_is_reached_at_its_address(cluster) -> None:
    """The address check (a connection from a child process, issue 30) passes a cluster that is there."""
    from rcstat.distributed import _REACHED, reach

    address = ray.get_runtime_context().gcs_address
    reach(address)
    assert address in _REACHED


def test_map_items_keeps_the_order_and_raises_what_one_process_raises(cluster) -> None:
    def square():
        return lambda x: x * x

    assert list(map_items(square, range(7), Workers(2))) == [x * x for x in range(7)]

    def broken():
        def run(x):
            raise ValueError(f"no good: {x}")

        return run

    with pytest.raises(ValueError, match="no good: 0"):  # a bug shows as itself, not as a Ray error
        list(map_items(broken, [0], Workers(1)))

    def cannot_start():
        raise RCStatError("no model here", option="model")

    with pytest.raises(RCStatError, match="no model here") as info:
        list(map_items(cannot_start, [0, 1], Workers(2)))
    assert info.value.option == "model"


# ---- sweeps ----------------------------------------------------------------------------------------


def test_bench_kv_on_two_workers_logs_what_one_process_logs(
    cluster, one_thread, tiny_checkpoint, tmp_path, capsys
):
    data = write_jsonl(
        tmp_path / "kv.jsonl",
        [
            {
                "context": f"{' '.join(FACTS)} The code word of day {i} is {w}.",
                "question": "Code word?",
                "answers": [w],
            }
            for i, w in enumerate(["PELICAN", "OTTER", "HERON", "LYNX"])
        ],
    )
    argv = [
        "bench",
        "kv",
        "--data",
        data,
        "--press",
        "rcstat,streaming_llm,none",
        "--compression-ratio",
        "0.5",
    ]
    argv += ["--model", tiny_checkpoint, "--max-new-tokens", "4", "--format", "json", "--output"]
    assert cli.main([*argv, str(tmp_path / "one")]) == 0
    assert cli.main([*argv, str(tmp_path / "two"), "--workers", "2", "--limit", "2"]) == 0
    capsys.readouterr()
    assert cli.main([*argv, str(tmp_path / "two"), "--workers", "2"]) == 0  # resumes: 2 from the log
    result = json.loads(capsys.readouterr().out)
    logs = [(tmp_path / d / "log.jsonl").read_text().splitlines() for d in ("one", "two")]
    assert len(logs[0]) == len(logs[1]) == 5  # a header and four samples, none twice
    for a, b in zip(logs[0], logs[1], strict=True):
        assert stable(json.loads(a)) == stable(json.loads(b))
    assert result["workers"] == "2 Ray workers"


def stable(record: dict) -> dict:
    """A log record without what differs between runs (times, memory peaks)."""
    if "results" not in record:
        return record
    cells = {
        key: {k: v for k, v in cell.items() if k not in ("seconds", "extra_bytes")}
        for key, cell in record["results"].items()
    }
    kept = {k: v for k, v in record.items() if not k.endswith("_seconds")}
    return {**kept, "results": cells}


def test_bench_attribution_on_two_workers_equals_one_process(
    cluster, one_thread, tiny_checkpoint, tmp_path, capsys
):
    data = write_jsonl(
        tmp_path / "quotesum.jsonl",
        [
            {
                "question": "Who?",
                "summary": f"[ {1 + i % 2} {FACTS[i % 2]} ] Also [ 3 {FACTS[2]} ]",
                "title1": "A",
                "source1": FACTS[0],
                "title2": "B",
                "source2": FACTS[1],
                "title3": "C",
                "source3": FACTS[2],
            }
            for i in range(3)
        ],
    )
    argv = ["bench", "attribution", "--dataset", "quotesum", "--data", data, "--model", tiny_checkpoint]
    argv += ["--method", "rcstat,attention,random", "--top-k", "4", "--faithfulness", "2", "--output"]
    assert cli.main([*argv, str(tmp_path / "one.json")]) == 0
    assert cli.main([*argv, str(tmp_path / "two.json"), "--workers", "2"]) == 0
    capsys.readouterr()
    one, two = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert len(one["records"]) == 6

    def tops(result: dict) -> list:
        return [
            (r["example"], r["target"], m, e["top"], e.get("drop@1"))
            for r in result["records"]
            for m, e in sorted(r["methods"].items())
        ]

    assert tops(one) == tops(two)


# ---- without the extra -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["attribute", "kv", "attribution"])
def test_without_ray_one_line_says_how_to_get_it(command, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as it does without the extra
    data = write_jsonl(tmp_path / "d.jsonl", rows(1))
    argv = {
        "attribute": ["attribute", "--data", data, "--output", str(tmp_path / "o.jsonl")],
        "kv": ["bench", "kv", "--task", "needle"],
        "attribution": ["bench", "attribution", "--dataset", "quotesum", "--data", data],
    }[command]
    line = fail([*argv, "--model", tiny_checkpoint, "--workers", "2"], capsys)
    assert (
        line == "rcstat: error: running on several workers needs Ray: pip install 'rcstat[ray]' (--workers)"
    )
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "o.errors.jsonl").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--query", "q"], "each row of a corpus holds its own; leave it out with --data (--query)"),
        (["--span", "0:3"], "each row of a corpus holds its own; leave it out with --data (--span)"),
        (["--format", "html"], "a corpus is attributed to JSONL, one row per line (--format)"),
    ],
)
def test_flags_of_one_attribution_are_refused_with_a_corpus(extra, message, tmp_path, capsys) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", rows(1))
    argv = ["attribute", "--data", data, "--output", str(tmp_path / "o.jsonl"), *extra]
    assert fail(argv, capsys) == f"rcstat: error: {message}"
    assert fail(["attribute", "--data", data], capsys).endswith(
        "a corpus is attributed to an output file (--output)"
    )
    context = tmp_path / "c.txt"
    context.write_text("Some text.")
    one = ["attribute", "--context", str(context), "--query", "q", "--workers", "2"]
    assert fail(one, capsys) == "rcstat: error: workers attribute a corpus: give it with --data (--workers)"


def test_rows_without_a_granularity_take_the_flag(tiny_checkpoint, tmp_path, capsys) -> None:
    given = [{**rows(1)[0], "id": "own", "granularity": "token"}, {**rows(1)[0], "id": "flag"}]
    data, out = write_jsonl(tmp_path / "d.jsonl", given), tmp_path / "o.jsonl"
    argv = [
        "attribute",
        "--data",
        data,
        "--output",
        str(out),
        "--model",
        tiny_checkpoint,
        "--granularity",
        "chunk",
    ]
    assert cli.main(argv) == 0
    written = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert written["own"]["granularity"] == "token" and written["flag"]["granularity"] == "chunk"
    assert len(written["flag"]["sources"]) == 1  # a text context is one chunk
    assert json.loads(capsys.readouterr().out)["done"] == 2
