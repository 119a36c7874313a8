"""One job over many items, in this process or on Ray workers (the optional extra ``rcstat[ray]``).

A job is a picklable *factory*: called once per worker, it loads what the worker needs (a model,
once) and returns the function that turns one item into one result. :func:`map_items` runs it in
this process (``workers=0``), on a local Ray cluster it starts (``workers=N``: N actors, each with its
own model and ``threads`` torch threads), or on an existing cluster (``address``; one actor per GPU
when it has GPUs; an address that does not answer is one error within seconds, :func:`reach`). Ray
Data's actor pool runs the items; the results come back in the items' order, the same as in one
process. An actor that dies (killed, out of memory) is restarted and its item run again, so no item
is lost and none is returned twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from rcstat.errors import RCStatError

Factory = Callable[[], Callable[[Any], Any]]
RAY_HINT = "pip install 'rcstat[ray]'"


@dataclass(frozen=True)
class Workers:
    """Where a job runs: in this process (the default), on ``count`` actors of a local Ray cluster that
    rcstat starts, or on the cluster at ``address``; ``threads`` torch threads per actor."""

    count: int = 0
    address: str | None = None
    threads: int = 1

    @property
    def on_ray(self) -> bool:
        return bool(self.count or self.address)

    def describe(self) -> str:
        if self.address:
            return f"the Ray cluster at {self.address}"
        return f"{self.count} Ray workers" if self.count else "one process"


HERE = Workers()  # in this process


def map_items(factory: Factory, items: Iterable[Any], workers: Workers = HERE) -> Iterator[Any]:
    """``factory()(item)`` for every item, in order: in this process or on Ray workers."""
    if not workers.on_ray:
        run = factory()
        for item in items:
            yield run(item)
        return
    yield from _ray_map(factory, list(items), workers)


@dataclass(frozen=True)
class ModelJob:
    """A picklable job whose workers load ``source``'s model once, then run
    ``fn(model, tokenizer, *args, *item)`` for each item."""

    source: Any  # a rcstat.models.loading.ModelSource
    fn: Callable[..., Any]
    args: tuple = ()

    def __call__(self) -> Callable[[Any], Any]:
        model, tokenizer = self.source.load()
        return lambda item: self.fn(model, tokenizer, *self.args, *item)


def map_model(
    model, tokenizer, fn: Callable[..., Any], args: tuple, items: Iterable[tuple], workers: Workers = HERE
) -> Iterator[Any]:
    """``fn(model, tokenizer, *args, *item)`` for every item, in order: with this model here, or on
    Ray workers that each load the same model again (:meth:`ModelSource.of`)."""
    if not workers.on_ray:
        return (fn(model, tokenizer, *args, *item) for item in items)
    from rcstat.models.loading import ModelSource

    return map_items(ModelJob(ModelSource.of(model), fn, args), items, workers)


CONNECT_SECONDS = 15.0  # how long :func:`reach` waits for a Ray cluster to answer (one answers in 1–2 s)
_REACHED: set[str] = set()
_PROBE = """
import signal
import sys
signal.alarm(int(sys.argv[2]))  # ends itself even when the process that started it was killed
import ray
try:
    ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, configure_logging=False)
except Exception as err:
    print((str(err).strip().splitlines() or [type(err).__name__])[0])
    sys.exit(1)
ray.shutdown()
"""


def reach(address: str) -> None:
    """Fail in one line within seconds when the Ray cluster at ``address`` does not answer (Ray's own
    retries last minutes and do not see Ctrl-C): a TCP connection first (refused, unroutable), then a
    Ray connection in a child process, killed when :data:`CONNECT_SECONDS` (the environment's
    ``RCSTAT_RAY_CONNECT_SECONDS``) run out or on Ctrl-C. An address reached once is not tried again."""
    import math
    import os
    import socket
    import subprocess
    import sys

    if address in _REACHED:
        return
    try:
        seconds = float(os.environ.get("RCSTAT_RAY_CONNECT_SECONDS", CONNECT_SECONDS))
    except ValueError:
        seconds = CONNECT_SECONDS
    seconds = seconds if 0 < seconds < float("inf") else CONNECT_SECONDS
    where = _host_port(address)
    if where is not None:
        try:
            socket.create_connection(where, timeout=min(5.0, seconds)).close()
        except TimeoutError:
            _unreachable(f"no answer from {address} within {min(5.0, seconds):g} s")
        except OSError as err:
            _unreachable(f"{address}: {err.strerror or type(err).__name__}")
    env = {**os.environ, "RAY_BACKEND_LOG_LEVEL": "fatal"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, address, str(math.ceil(seconds) + 1)],
            capture_output=True,
            text=True,
            timeout=seconds,
            env=env,
        )
    except subprocess.TimeoutExpired:
        _unreachable(f"no answer from {address} within {seconds:g} s")
    if done.returncode != 0:
        lines = (done.stdout or done.stderr).strip().splitlines()
        _unreachable(lines[-1] if lines else f"the probe of {address} exited with {done.returncode}")
    _REACHED.add(address)


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for ``auto`` and the like."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def _unreachable(reason: str) -> NoReturn:
    raise RCStatError(f"cannot start or reach Ray ({reason})", option="ray_address")


def require_ray():
    """``ray`` (with Ray Data), or one clear line saying how to get it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise RCStatError(f"running on several workers needs Ray: {RAY_HINT}", option="workers") from None
    return ray


class _Actor:
    """A Ray Data callable class: one factory call per actor, then one result per row. An exception
    (in the factory or on an item) travels back as the row's result, so that the caller raises it as
    in one process, not as a Ray error."""

    def __init__(self, factory: bytes, threads: int) -> None:
        import torch
        from ray import cloudpickle

        torch.set_num_threads(threads)
        try:
            self.run, self.failure = cloudpickle.loads(factory)(), None
        except Exception as err:  # the worker cannot start (a model that does not load here…)
            self.run, self.failure = None, err

    def __call__(self, batch: dict) -> dict:
        from ray import cloudpickle

        return {
            "result": [cloudpickle.dumps(self._outcome(cloudpickle.loads(item))) for item in batch["item"]]
        }

    def _outcome(self, item: Any) -> tuple[bool, Any]:
        if self.failure is not None:
            return False, self.failure
        try:
            return True, self.run(item)
        except Exception as err:
            return False, err


def _quiet() -> None:
    """Ray's own chatter (start-up notes, Ray Data's plan and progress) off stderr: a failure still
    reaches the caller as an exception, and Ray's logs stay in its session directory."""
    import logging
    import os

    # the core logs an error on every restartable actor whose arguments sit in the object store (all
    # of Ray Data's); at "fatal" it logs one line saying so instead
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _ray_map(factory: Factory, items: list, workers: Workers) -> Iterator[Any]:
    ray = require_ray()
    if not items:
        return
    _quiet()
    started = False
    if not ray.is_initialized():
        if workers.address:
            reach(workers.address)
        options = (
            {"address": workers.address} if workers.address else {"num_cpus": workers.count * workers.threads}
        )
        try:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:  # no cluster there, a bad address
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RCStatError(f"cannot start or reach Ray ({reason})", option="ray_address") from None
        started = True
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        gpus = int(ray.cluster_resources().get("GPU", 0)) if workers.address else 0
        pickled = [{"item": ray.cloudpickle.dumps(item)} for item in items]
        # Ray Data's actor pools restart a dead actor and run its item again (max_restarts and
        # max_task_retries default to -1 there), so no item is lost and none comes back twice
        results = ray.data.from_items(pickled).map_batches(
            _Actor,
            fn_constructor_args=(ray.cloudpickle.dumps(factory), workers.threads),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=gpus or workers.count or 1),
            num_cpus=workers.threads,
            num_gpus=1 if gpus else 0,
        )
        try:
            for row in results.iter_rows():
                ok, value = ray.cloudpickle.loads(row["result"])
                if not ok:
                    raise value
                yield value
        except ray.exceptions.RayError as err:
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise RCStatError(f"the Ray job failed: {reason}") from err
    finally:
        if started:
            ray.shutdown()
