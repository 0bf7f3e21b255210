"""The benchmark runner's process plumbing: environment record, worker start-up and shutdown,
SIGTERM handling, the package archive sent to Dask workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

import benchmarks.runner as runner


@pytest.fixture
def torch_threads():
    """Restore torch's thread count after the test."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_environment_reads_the_torch_threads_at_every_call(torch_threads):
    torch.set_num_threads(1)
    first = runner.environment(1)
    torch.set_num_threads(2)
    second = runner.environment(1)  # the same argument: a cache keyed by it would answer 1
    assert first["torch_threads"] == 1
    assert second["torch_threads"] == 2 == torch.get_num_threads()
    assert runner.environment(4)["threads"] == 4
    static = {k: v for k, v in first.items() if k not in ("torch_threads", "threads")}
    assert static == {k: v for k, v in second.items() if k not in ("torch_threads", "threads")}
    assert static["torch"] == torch.__version__ and static["cpus"] == os.cpu_count()


def test_init_worker_uses_one_torch_thread_and_silences_user_warnings(torch_threads):
    torch.set_num_threads(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runner._init_worker()
        warnings.warn("ignored in workers", UserWarning, stacklevel=1)
        warnings.warn("kept", RuntimeWarning, stacklevel=1)
    assert torch.get_num_threads() == 1
    assert [str(w.message) for w in caught] == ["kept"]


def test_local_worker_ignores_sigint_and_watches_its_parent(monkeypatch, torch_threads):
    handlers, started = {}, []

    class Thread:
        def __init__(self, target, args, name, daemon):
            self.call = (target, args, daemon)

        def start(self):
            started.append(self.call)

    monkeypatch.setattr(runner.signal, "signal", lambda sig, h: handlers.update({sig: h}))
    monkeypatch.setattr(runner.threading, "Thread", Thread)
    with warnings.catch_warnings():
        runner._init_local_worker()
    assert handlers == {signal.SIGINT: signal.SIG_IGN}
    assert started == [(runner._watch_parent, (os.getppid(),), True)]
    assert torch.get_num_threads() == 1


def test_watch_parent_exits_once_the_parent_is_gone(monkeypatch):
    parents = iter([100, 100, 1])  # the runner, the runner, then init adopted the worker
    sleeps = []

    def exit_(code):
        raise SystemExit(code)

    monkeypatch.setattr(runner.os, "getppid", lambda: next(parents))
    monkeypatch.setattr(runner.os, "_exit", exit_)
    monkeypatch.setattr(runner.time, "sleep", sleeps.append)
    with pytest.raises(SystemExit) as exited:
        runner._watch_parent(100, interval=0.25)
    assert exited.value.code == 1
    assert sleeps == [0.25, 0.25, 0.25]


def test_stop_workers_terminates_then_kills_what_ignores_sigterm():
    context = multiprocessing.get_context("spawn")
    polite = context.Process(target=time.sleep, args=(60,), daemon=True)
    polite.start()
    # SIG_IGN is inherited through exec: this child ignores SIGTERM from its first instruction
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        stubborn = context.Process(target=time.sleep, args=(60,), daemon=True)
        stubborn.start()
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        runner._stop_workers(grace=1.0)
        assert not polite.is_alive() and not stubborn.is_alive()
        assert polite.exitcode == -signal.SIGTERM
        assert stubborn.exitcode == -signal.SIGKILL
    finally:
        for child in (polite, stubborn):
            if child.is_alive():
                child.kill()
                child.join()


def test_sigterm_becomes_a_keyboard_interrupt_only_inside_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGTERM)}"):
        with runner._sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises at the next bytecode boundary
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_handling_is_left_alone_outside_the_main_thread():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def body():
        with runner._sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [before]


def test_package_zip_holds_every_module_and_is_deleted_afterwards():
    root = Path(runner.__file__).resolve().parent
    with runner._package_zip() as name:
        with zipfile.ZipFile(name) as archive:
            contents = {n: archive.read(n) for n in archive.namelist()}
    assert not Path(name).exists()
    expected = {f"benchmarks/{f.name}": f.read_bytes() for f in root.glob("*.py")}
    assert "benchmarks/runner.py" in expected and contents == expected
    with pytest.raises(RuntimeError, match="upload failed"):
        with runner._package_zip() as name:
            raise RuntimeError("upload failed")
    assert not Path(name).exists()
