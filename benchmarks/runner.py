"""Run a profile: local worker processes or a Dask cluster, resumable, one JSON line per run.

Each (suite, instance, method) run appends one JSON line to the output file as soon as it
finishes, with its key, its settings and the environment it ran in (versions, licence kind,
threads). A rerun with the same output file reads the keys already there and runs only the
others, so an interrupted run loses at most the runs in progress. A truncated last line (a
crash mid-write) is ignored and that run is redone.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fnmatch
import functools
import json
import multiprocessing
import os
import platform
import signal
import socket
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .suites import Instance, MethodSpec, Profile

KEY_FIELDS = ("suite", "instance", "method")


@dataclass(frozen=True)
class Task:
    """One (instance, method) run with its settings (picklable, sent to workers)."""

    instance: Instance
    method: MethodSpec
    time_limit: float
    threads: int = 1
    seed: int = 0
    cache_dir: str | None = None
    profile: str = ""
    order: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.instance.suite, self.instance.id, self.method.name)


# ------------------------------------------------------------------------------ results file


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a results file (malformed lines, such as a truncated last one, skipped).

    Examples
    --------
    >>> read_results("/nonexistent/file.jsonl")
    []
    """
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: skipping a malformed line", stacklevel=2)
                continue
            if isinstance(record, dict) and all(k in record for k in KEY_FIELDS):
                records.append(record)
    return records


def record_key(record: dict[str, Any]) -> tuple[str, str, str]:
    """The key ``(suite, instance, method)`` of a record."""
    return tuple(str(record[k]) for k in KEY_FIELDS)  # type: ignore[return-value]


def finished_keys(path: str | os.PathLike, retry_errors: bool = False) -> set[tuple[str, str, str]]:
    """Keys of the runs recorded in ``path`` (without the failed ones if ``retry_errors``)."""
    latest = {record_key(r): r for r in read_results(path)}
    return {k for k, r in latest.items() if not (retry_errors and r.get("status") == "error")}


def _append(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; start a new line first if the file ends in a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    needs_newline = False
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            needs_newline = handle.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as handle:
        if needs_newline:
            handle.write("\n")
        handle.write(json.dumps(record, sort_keys=True, allow_nan=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ------------------------------------------------------------------------------ environment


def environment(threads: int = 1) -> dict[str, Any]:
    """Versions, licence kind, host and threads of the process that runs the benchmark.

    The versions, host and licence are looked up once per process; the torch thread count is
    read at every call (a worker sets it after the first record may have been written).
    """
    import torch

    return {**_static_environment(), "torch_threads": torch.get_num_threads(), "threads": threads}


@functools.cache
def _static_environment() -> dict[str, Any]:
    """The part of :func:`environment` that cannot change while the process runs."""
    import gurobi_ml
    import gurobipy
    import numpy
    import torch

    import gurobi_sparse_surrogate as gss

    try:
        licence = "size-limited" if gss.license_is_size_limited() else "full"
    except Exception as error:  # noqa: BLE001 - no licence at all is worth recording too
        licence = f"unavailable ({type(error).__name__}: {error})"
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "gurobi": ".".join(map(str, gurobipy.gurobi.version())),
        "gurobipy": gurobipy.__version__,
        "gurobi_ml": gurobi_ml.__version__,
        "gurobi_sparse_surrogate": gss.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "licence": licence,
    }


def _init_worker() -> None:
    """Worker start-up: one torch thread, so that one run uses one core."""
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=UserWarning)


def _init_local_worker() -> None:
    """Start-up of a local worker process: :func:`_init_worker`, and no orphan.

    A local worker leaves interrupts to the runner (which terminates its workers when it is
    interrupted) and exits by itself when the runner is gone (killed with no chance to clean
    up), instead of running its task to the time limit for nobody.
    """
    _init_worker()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_watch_parent, args=(os.getppid(),), name="watch-runner", daemon=True
    ).start()


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    """Exit this process (status 1) as soon as its parent is no longer ``parent``."""
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(1)


def _stop_workers(grace: float = 10.0) -> None:
    """Terminate this process's worker processes and wait for them (``grace`` seconds each,
    then kill)."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=grace)
        if child.is_alive():
            child.kill()
            child.join(timeout=5)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while running, so that clean-up code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute_task(task: Task) -> dict[str, Any]:
    """Run one task and return its complete JSON record (never raises)."""
    from .methods import run_method

    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    result = run_method(
        task.instance,
        task.method,
        time_limit=task.time_limit,
        threads=task.threads,
        seed=task.seed,
        cache_dir=task.cache_dir,
    )
    record = {**_base_record(task), "started": started}
    record.update(result)
    try:
        record["env"] = environment(task.threads)
    except Exception as error:  # noqa: BLE001
        record["env"] = {"error": repr(error)}
    return record


def _base_record(task: Task) -> dict[str, Any]:
    """The key and settings fields of a task's record."""
    return {
        "suite": task.instance.suite,
        "instance": task.instance.id,
        "method": task.method.name,
        "kind": task.method.kind,
        "family": task.method.family,
        "rate": task.method.rate,
        "options": dict(task.method.options),
        "params": dict(task.instance.params),
        "profile": task.profile,
        "order": task.order,
        "time_limit": task.time_limit,
        "threads": task.threads,
        "seed": task.seed,
    }


# ------------------------------------------------------------------------------ running


def make_tasks(
    profile: Profile,
    *,
    time_limit: float | None = None,
    threads: int | None = None,
    cache_dir: str | None = None,
    methods: Iterable[str] | None = None,
    suites: Iterable[str] | None = None,
    instances: Iterable[str] | None = None,
) -> list[Task]:
    """The profile's tasks, optionally restricted to some methods, suites and instances.

    ``instances`` holds shell-style patterns (:func:`fnmatch.fnmatchcase`, e.g.
    ``"mnistfc-2x256*"``) matched against the instance ids; an instance is kept when any
    pattern matches it. A pattern that matches no instance of the profile raises
    :class:`ValueError` naming it.
    """
    wanted = set(methods) if methods else None
    if wanted:
        unknown = wanted - {m.name for m in profile.methods}
        if unknown:
            raise ValueError(
                f"methods {sorted(unknown)} are not in profile {profile.name!r}; it has "
                f"{[m.name for m in profile.methods]}"
            )
    suite_set = set(suites) if suites else None
    patterns = list(instances) if instances else None
    if patterns:
        ids = [inst.id for inst in profile.instances]
        unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(i, p) for i in ids)]
        if unmatched:
            raise ValueError(
                f"instance pattern(s) {unmatched} match no instance of profile "
                f"{profile.name!r} (see `python -m benchmarks list --profile {profile.name}`)"
            )
    order = {spec.name: i for i, spec in enumerate(profile.methods)}
    return [
        Task(
            instance,
            spec,
            time_limit=float(time_limit if time_limit is not None else profile.time_limit),
            threads=int(threads if threads is not None else profile.threads),
            seed=profile.seed,
            cache_dir=cache_dir,
            profile=profile.name,
            order=order[spec.name],
        )
        for instance, spec in profile.tasks()
        if (wanted is None or spec.name in wanted)
        and (suite_set is None or instance.suite in suite_set)
        and (patterns is None or any(fnmatch.fnmatchcase(instance.id, p) for p in patterns))
    ]


def prepare(tasks: Iterable[Task]) -> None:
    """Train (or load from the cache) every classifier once, before the workers start."""
    from .methods import classifier

    seen = set()
    for task in tasks:
        inst = task.instance
        key = (inst.network_key(), task.cache_dir)
        if inst.suite == "verification" and key not in seen and task.cache_dir is not None:
            seen.add(key)
            classifier(inst, task.cache_dir)


def _local(tasks: list[Task], jobs: int) -> Iterator[dict[str, Any]]:
    if jobs <= 1:  # in this process (restoring its torch threads and warning filters)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                for task in tasks:
                    yield execute_task(task)
        finally:
            torch.set_num_threads(threads)
        return
    context = multiprocessing.get_context("spawn")  # torch + gurobipy + fork is fragile
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_local_worker) as pool:
        futures = {pool.submit(execute_task, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                yield _result_or_error(future, futures[future])
        except BaseException:
            # interrupted (or the consumer stopped): no worker may outlive the runner
            for future in futures:
                future.cancel()
            _stop_workers()
            raise


def _result_or_error(future: Any, task: Task) -> dict[str, Any]:
    """The task's record, or an error record when its worker died (e.g. a crashed process)."""
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - recorded; --retry-errors runs it again
        return {
            **_base_record(task),
            "status": "error",
            "found": False,
            "error": f"worker failed: {type(error).__name__}: {error}",
        }


@contextlib.contextmanager
def _package_zip() -> Iterator[str]:
    """The benchmarks package as a temporary zip file (to upload to Dask workers), deleted
    when the block ends."""
    root = Path(__file__).resolve().parent
    fd, name = tempfile.mkstemp(suffix=".zip", prefix="benchmarks-")
    os.close(fd)
    try:
        with zipfile.ZipFile(name, "w") as archive:
            for file in root.glob("*.py"):
                archive.write(file, f"benchmarks/{file.name}")
        yield name
    finally:
        os.remove(name)


def _dask(tasks: list[Task], scheduler: str) -> Iterator[dict[str, Any]]:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    with Client(scheduler) as client:
        with _package_zip() as archive:
            client.upload_file(archive)
        client.run(_init_worker)
        futures = {
            client.submit(execute_task, task, pure=False, key=f"bench-{i}-{task.method.name}"): task
            for i, task in enumerate(tasks)
        }
        for future in dask_completed(list(futures)):
            yield _result_or_error(future, futures[future])


def run_benchmark(
    profile: Profile,
    output: str | os.PathLike,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    time_limit: float | None = None,
    threads: int | None = None,
    methods: Iterable[str] | None = None,
    suites: Iterable[str] | None = None,
    instances: Iterable[str] | None = None,
    max_runs: int | None = None,
    retry_errors: bool = False,
    progress: bool = True,
) -> dict[str, int]:
    """Run the profile's pending (instance, method) pairs, appending one JSON line per run.

    Parameters
    ----------
    profile : Profile
    output : path
        The results file (JSON lines); created if needed, appended to otherwise.
    jobs : int
        Local worker processes (``spawn`` context); 1 runs in this process.
    scheduler : str, optional
        Address of a Dask distributed scheduler; the tasks run on its workers instead (each
        worker needs gurobipy, a licence and this package; the ``benchmarks`` package itself
        is uploaded).
    cache_dir : path, optional
        Directory of trained networks; default ``<output dir>/cache``.
    time_limit, threads : optional
        Override the profile's settings.
    methods, suites : iterable of str, optional
        Run only these methods / suites.
    instances : iterable of str, optional
        Run only the instances whose id matches one of these shell-style patterns
        (``"mnistfc-2x256*"``); a pattern matching nothing raises :class:`ValueError`.
    max_runs : int, optional
        Stop after this many new runs (a deliberate interruption; rerun to resume).
    retry_errors : bool
        Run again the pairs whose recorded result is an error (the new line supersedes).
    progress : bool
        Show a tqdm progress bar (finished runs and ETA).

    Returns
    -------
    dict
        ``total`` pairs in the selection, ``done_before`` (skipped, already in the file),
        ``ran`` now, and counts of the new runs by ``status``.

    Examples
    --------
    >>> from benchmarks import get_profile
    >>> run_benchmark(get_profile("smoke"), "results/smoke.jsonl")  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    output = Path(output)
    cache = str(Path(cache_dir) if cache_dir is not None else output.parent / "cache")
    tasks = make_tasks(
        profile,
        time_limit=time_limit,
        threads=threads,
        cache_dir=cache,
        methods=methods,
        suites=suites,
        instances=instances,
    )
    done = finished_keys(output, retry_errors=retry_errors)
    pending = [t for t in tasks if t.key not in done]
    summary = {"total": len(tasks), "done_before": len(tasks) - len(pending), "ran": 0}
    if max_runs is not None:
        pending = pending[: max(0, int(max_runs))]
    if not pending:
        return summary
    if scheduler is None:
        prepare(pending)
        stream = _local(pending, jobs)
    else:
        stream = _dask(pending, scheduler)
    bar = tqdm(total=len(pending), desc=f"{profile.name}", unit="run", disable=not progress)
    found = 0
    with bar, _sigterm_as_interrupt(), contextlib.closing(stream):
        for record in stream:
            _append(output, record)
            summary["ran"] += 1
            status = str(record.get("status"))
            summary[status] = summary.get(status, 0) + 1
            found += bool(record.get("found"))
            bar.set_postfix(found=found, errors=summary.get("error", 0), refresh=False)
            bar.update(1)
    return summary


def main_run_message(summary: dict[str, int], output: Path) -> str:
    """A one-line summary of a run for the command line."""
    extra = ", ".join(
        f"{k}: {v}" for k, v in sorted(summary.items()) if k not in ("total", "done_before", "ran")
    )
    return (
        f"{summary['ran']} runs done now, {summary['done_before']} of {summary['total']} were "
        f"already in {output}" + (f" ({extra})" if extra else "")
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m benchmarks run ...")
