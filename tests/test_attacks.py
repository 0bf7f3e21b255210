"""Projected-gradient attacks: success on large domains, none at radius 0, network untouched."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from gurobi_sparse_surrogate.applications.attacks import AttackResult, pgd_attack, pgd_maximize
from gurobi_sparse_surrogate.domains import Box, L1Ball, LinfBall
from gurobi_sparse_surrogate.exceptions import ShapeMismatchError
from gurobi_sparse_surrogate.network.extraction import clone_network


@pytest.fixture(scope="module")
def digits():
    """A small MLP trained for a few hundred Adam steps on sklearn's 8x8 digits."""
    from sklearn import datasets  # in the data extra: a full install has it

    data = datasets.load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a busy machine
    try:
        for _ in range(300):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    net.eval()
    with torch.no_grad():
        predicted = net(x).argmax(dim=1)
    correct = np.flatnonzero((predicted == y).numpy())
    assert correct.size > 0.9 * len(y)  # the network learnt something
    return net, x.numpy().astype(np.float64), correct


def logits64(net: nn.Module, x: np.ndarray) -> np.ndarray:
    """Independent reference: a float64 copy's forward pass."""
    ref = clone_network(net).double().eval()
    with torch.no_grad():
        return ref(torch.tensor(np.atleast_2d(x), dtype=torch.float64)).numpy()


def state_copy(net: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same_state(net: nn.Module, state: dict) -> None:
    now = net.state_dict()
    assert now.keys() == state.keys()
    for key, value in state.items():
        assert now[key].dtype == value.dtype and torch.equal(now[key], value)


@pytest.mark.parametrize(
    "make_domain",
    [lambda c: LinfBall(c, 1.0), lambda c: L1Ball(c, 30.0), lambda c: Box(0.0, 1.0, n=c.size)],
    ids=["linf", "l1", "box"],
)
def test_huge_domain_yields_an_adversarial_input(digits, make_domain):
    net, images, correct = digits
    x0 = images[correct[0]]
    domain = make_domain(x0)
    result = pgd_attack(net, x0, domain, seed=1, time_budget=None)
    assert isinstance(result, AttackResult)
    assert result.success and result.margin < 0
    assert domain.contains(result.x) and result.x.dtype == np.float64
    logits = logits64(net, result.x)[0]
    assert np.argmax(logits) != result.label
    assert result.margin == pytest.approx(logits[result.label] - logits[result.target], abs=1e-9)
    # early stop: fewer steps than the budget allows
    assert result.steps_run < 100
    with torch.no_grad():  # torch's own float32 net misclassifies it too
        assert (
            net(torch.tensor(result.x, dtype=torch.float32)[None]).argmax().item() != result.label
        )


def test_radius_zero_never_succeeds(digits):
    net, images, correct = digits
    for index in correct[:5]:
        x0 = images[index]
        for domain in (LinfBall(x0, 0.0), L1Ball(x0, 0.0)):
            result = pgd_attack(net, x0, domain, steps=10, restarts=3, time_budget=None)
            assert not result.success and result.margin > 0
            np.testing.assert_allclose(result.x, x0, atol=1e-12)
            logits = logits64(net, x0)[0]
            assert result.label == np.argmax(logits)
            runner_up = np.argsort(logits)[-2]
            assert result.target == runner_up
            assert result.margin == pytest.approx(logits.max() - logits[runner_up], abs=1e-9)


def test_network_is_left_unchanged(digits):
    net, images, correct = digits
    pruned = copy.deepcopy(net)
    prune.l1_unstructured(pruned[0], "weight", amount=0.5)
    pruned.train()  # the caller's mode must survive
    state = state_copy(pruned)
    x0 = images[correct[1]]
    result = pgd_attack(pruned, x0, L1Ball(x0, 3.0), steps=20, time_budget=None)
    pgd_maximize(pruned, LinfBall(x0, 0.1), steps=5)
    assert pruned.training and all(m.training for m in pruned.modules())
    assert_same_state(pruned, state)
    assert hasattr(pruned[0], "weight_mask") and hasattr(pruned[0], "weight_orig")
    # the attack judged the pruned (masked) network, not the dense weights
    masked = copy.deepcopy(net)
    with torch.no_grad():
        masked[0].weight.copy_(pruned[0].weight_orig * pruned[0].weight_mask)
    assert not torch.equal(masked[0].weight, net[0].weight)
    logits = logits64(masked, result.x)[0]
    assert result.margin == pytest.approx(logits[result.label] - logits[result.target], abs=1e-9)

    net64 = copy.deepcopy(net).double()
    state64 = state_copy(net64)
    pgd_attack(net64, x0, LinfBall(x0, 0.2), steps=5)
    assert not net64.training and next(net64.parameters()).dtype == torch.float64
    assert_same_state(net64, state64)


def test_targeted_and_any_targets(digits):
    net, images, correct = digits
    x0 = images[correct[2]]
    label = int(np.argmax(logits64(net, x0)[0]))
    target = (label + 3) % 10
    result = pgd_attack(net, x0, LinfBall(x0, 1.0), target=target, time_budget=None)
    assert result.target == target and result.label == label
    logits = logits64(net, result.x)[0]
    assert result.margin == pytest.approx(logits[label] - logits[target], abs=1e-9)
    assert result.success and logits[target] > logits[label]

    small = pgd_attack(net, x0, LinfBall(x0, 0.05), target="any", steps=30)
    logits = logits64(net, small.x)[0]
    others = np.delete(logits, label)
    assert small.target == np.delete(np.arange(10), label)[np.argmax(others)]
    assert small.margin == pytest.approx(logits[label] - others.max(), abs=1e-9)
    # the attack decreased the margin from its value at x0
    start = logits64(net, x0)[0]
    assert small.margin <= start[label] - np.delete(start, label).max() + 1e-12


def test_given_true_label_is_used(digits):
    net, images, correct = digits
    x0 = images[correct[3]]
    logits = logits64(net, x0)[0]
    wrong = int(np.argsort(logits)[-2])
    # x0 is already "adversarial" for a label that is not its prediction
    result = pgd_attack(net, x0, LinfBall(x0, 0.0), true_label=wrong, steps=5)
    assert result.success and result.label == wrong and result.steps_run == 0
    assert result.target == int(np.argmax(logits))


def test_bad_arguments(digits):
    net, images, _ = digits
    x0 = images[0]
    ball = LinfBall(x0, 0.1)
    with pytest.raises(ShapeMismatchError, match="x0"):
        pgd_attack(net, x0[:10], ball)
    with pytest.raises(ValueError, match="true label"):
        pgd_attack(net, x0, ball, true_label=1, target=1)
    with pytest.raises(ValueError, match="target"):
        pgd_attack(net, x0, ball, target="second")
    with pytest.raises(ValueError, match="true_label"):
        pgd_attack(net, x0, ball, true_label=10)
    with pytest.raises(ValueError, match="restarts"):
        pgd_attack(net, x0, ball, restarts=0)
    with pytest.raises(ValueError, match="time_budget"):
        pgd_attack(net, x0, ball, time_budget=0)
    with pytest.raises(TypeError, match="domain"):
        pgd_attack(net, x0, (0, 1))
    with pytest.raises(ValueError, match="output_index"):
        pgd_maximize(net, ball, output_index=10)
    with pytest.raises(TypeError, match="network must be a torch.nn.Module, got dict"):
        pgd_attack({}, x0, ball)
    with pytest.raises(TypeError, match="network must be a torch.nn.Module"):
        pgd_maximize(lambda x: x, ball)
    with pytest.raises(TypeError, match="domain must be a Box, LinfBall or L1Ball, got tuple"):
        pgd_maximize(net, (0, 1))
    with pytest.raises(ValueError, match="steps must be a non-negative integer, got -1"):
        pgd_attack(net, x0, ball, steps=-1)
    with pytest.raises(ValueError, match="steps must be a non-negative integer, got 2.5"):
        pgd_maximize(net, ball, steps=2.5)
    with pytest.raises(ValueError, match="step_size must be a positive number or None"):
        pgd_attack(net, x0, ball, step_size=0.0)
    with pytest.raises(ValueError, match="step_size must be a positive number or None"):
        pgd_maximize(net, ball, step_size=float("nan"))
    with pytest.raises(ValueError, match="x0 contains NaN or infinite values"):
        pgd_attack(net, np.where(np.arange(x0.size) == 3, np.nan, x0), ball)
    one_output = nn.Sequential(nn.Linear(x0.size, 1))
    with pytest.raises(ValueError, match="at least 2 classes, the network has 1 output"):
        pgd_attack(one_output, x0, ball)


@pytest.mark.parametrize("kind", ["box", "l1"])
def test_pgd_maximize_beats_centre_and_random_points(kind):
    torch.manual_seed(4)
    net = nn.Sequential(
        nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 2)
    )
    net.eval()
    domain = Box(0.0, 1.0, n=12) if kind == "box" else L1Ball(np.full(12, 0.5), 2.0)
    result = pgd_maximize(net, domain, output_index=1, seed=3, time_budget=None)
    assert domain.contains(result.x)
    assert result.value == pytest.approx(logits64(net, result.x)[0, 1], abs=1e-12)
    at_centre = logits64(net, domain.center)[0, 1]
    random = domain.project(np.random.default_rng(99).random((200, 12)))
    assert result.value >= at_centre
    assert result.value >= logits64(net, random)[:, 1].max()
    assert result.seconds >= 0 and result.steps_run == 100
