"""Ctrl-C stops the whole call: a real SIGINT sent to a child process.

Each child prints ``ready`` just before the long call (time limits of minutes), the test sends
SIGINT (or SIGTERM) once the call is under way and waits for the child with a timeout far
below those limits. Asserted: the child stopped, its exit status or the result's
``interrupted`` flag, and that no process it started is left behind. No timing beyond that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATIENCE = 120  # seconds the child gets to stop; the calls it makes would run for 600

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# A model that Gurobi cannot solve in minutes: a random ReLU network's output plus a market
# split system over binaries of the user's own (Cornuejols and Dawande: 6 equality rows of
# coefficients in [0, 100) halving their sums; branch and bound needs hours on such systems).
# A knapsack of inequalities was used first; Gurobi came to solve it in under 2 s.
HARD_SWAP = """
import gurobipy as gp, numpy as np, torch
from gurobi_sparse_surrogate import SurrogateSwap, add_sparse_predictor_constr
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
m = gp.Model(env=gp.Env(params={"OutputFlag": 0, "Threads": 1}))
x = m.addMVar(6, lb=0, ub=1)
pc = add_sparse_predictor_constr(m, net, x, bounds="interval")
rng = np.random.default_rng(0)
z = m.addMVar(60, vtype="B")
a = rng.integers(0, 100, (6, 60))
m.addConstr(a @ z == a.sum(axis=1) // 2)
m.setObjective(pc.output[0, 0] + rng.integers(1, 100, 60) @ z, gp.GRB.MAXIMIZE)
m.update()
before = (m.NumVars, m.NumConstrs)
with SurrogateSwap(m, pc, surrogate=0.5) as swap:
    print("ready", flush=True)
    result = swap.optimize(time_limit=600)
m.update()
print(json.dumps({"interrupted": result.interrupted, "status": result.status,
                  "phases": [[p["name"], p.get("gurobi_status")] for p in result.phases],
                  "restored": (m.NumVars, m.NumConstrs) == before}), flush=True)
"""

ATTACK = """
import numpy as np, torch
from gurobi_sparse_surrogate import LinfBall, find_adversarial
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
x0 = np.full(8, 0.5)
print("ready", flush=True)
result = find_adversarial(net, x0, LinfBall(x0, 1e-6), time_limit=600,
                          attack_options={"steps": 10**9, "restarts": 1, "time_budget": 600})
print(json.dumps({"interrupted": result.interrupted, "status": result.status}), flush=True)
"""

MAXIMIZE = """
import numpy as np
from gurobi_sparse_surrogate import Box, maximize_output
from gurobi_sparse_surrogate.datasets import random_relu_network
net = random_relu_network(16, 3, 40, seed=1)
print("ready", flush=True)
result = maximize_output(net, Box(np.zeros(16), np.ones(16)), time_limit=600, attack=False,
                         bounds="interval", surrogate=0.5)
print(json.dumps({"interrupted": result.interrupted, "optimal": result.optimal}), flush=True)
"""


def start(script: str, token: str) -> subprocess.Popen:
    env = {**os.environ, "RELIABILITY_TOKEN": token, "PYTHONPATH": str(ROOT)}
    code = "import json\n" + textwrap.dedent(script)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(proc: subprocess.Popen, text: str) -> None:
    line = proc.stdout.readline()
    assert text in line, f"child said {line!r}; stderr: {proc.stderr.read()[-2000:]}"


def processes_with(token: str) -> list[int]:
    """Live processes whose environment carries ``token`` (the child and what it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if f"RELIABILITY_TOKEN={token}".encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def assert_none_left(token: str) -> None:
    for _ in range(50):  # terminated processes may take a moment to be reaped
        left = processes_with(token)
        if not left:
            return
        time.sleep(0.2)
    for pid in left:  # do not leak them into the rest of the test session
        os.kill(pid, signal.SIGKILL)
    pytest.fail(f"processes left behind: {left}")


@pytest.mark.parametrize(
    ("script", "delay"),
    [(HARD_SWAP, 2.0), (ATTACK, 2.0), (MAXIMIZE, 3.0)],
    ids=["swap", "find_adversarial-attack", "maximize_output"],
)
def test_sigint_stops_the_whole_call(script, delay):
    token = uuid.uuid4().hex
    proc = start(script, token)
    try:
        wait_for_line(proc, "ready")
        time.sleep(delay)  # let the long call get under way
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"] is True
    if "restored" in result:
        assert result["restored"]
        # no phase starts after the interrupt: a solve that Ctrl-C ended is the last one
        # (the interrupt may land in the surrogate phase or, on a fast machine, in the dense one)
        statuses = [status for _, status in result["phases"]]
        interrupted = [i for i, s in enumerate(statuses) if s == 11]  # GRB.INTERRUPTED
        assert interrupted in ([], [len(statuses) - 1]), result["phases"]
    assert_none_left(token)


RUNNER = """
import sys
from benchmarks.runner import run_benchmark
from benchmarks.suites import Instance, Profile, method
quick = Instance("maximization", "tiny", {"n_inputs": 2, "depth": 1, "width": 4, "seed": 0})
hard = Instance("maximization", "hard", {"n_inputs": 16, "depth": 3, "width": 40, "seed": 1})
profile = Profile("fake", (quick, hard, hard.__class__("maximization", "hard2", hard.params)),
                  (method("dense", bounds="interval"),), time_limit=600)
print("ready", flush=True)
run_benchmark(profile, sys.argv[1], jobs=int(sys.argv[2]), progress=False)
"""


@pytest.mark.parametrize(
    ("jobs", "sig"),
    [(1, signal.SIGINT), (2, signal.SIGINT), (2, signal.SIGTERM)],
    ids=["jobs1-sigint", "jobs2-sigint", "jobs2-sigterm"],
)
def test_runner_stops_keeps_results_and_leaves_no_worker(tmp_path, jobs, sig):
    token = uuid.uuid4().hex
    output = tmp_path / "results.jsonl"
    env = {**os.environ, "RELIABILITY_TOKEN": token, "PYTHONPATH": str(ROOT)}
    code = "import runpy, sys; from benchmarks.__main__ import main\n" + textwrap.dedent(
        RUNNER
    ).replace(
        "run_benchmark(profile, sys.argv[1], jobs=int(sys.argv[2]), progress=False)",
        "import benchmarks.__main__ as cli, benchmarks.suites as suites\n"
        "suites._BUILDERS['fake'] = lambda: profile\n"
        "cli.get_profile = lambda name: profile\n"
        "sys.exit(cli.main(['run', '--profile', 'smoke', '--output', sys.argv[1], "
        "'--jobs', sys.argv[2], '--no-progress', '--cache-dir', sys.argv[3]]))",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(output), str(jobs), str(tmp_path / "cache")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_line(proc, "ready")
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline and proc.poll() is None:
            if output.is_file() and output.read_text().count("\n") >= 1:
                break  # the tiny instance is recorded; the hard ones are running
            time.sleep(0.2)
        time.sleep(2.0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, err[-3000:]
    assert "interrupted" in err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["instance"] for r in records] == ["tiny"]  # kept, and nothing half-done recorded
    assert_none_left(token)
