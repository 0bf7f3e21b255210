"""Projected-gradient attacks on the dense network (the cheap stage before a MILP).

:func:`pgd_attack` looks for an input of the domain whose margin
``logit[true] - logit[target]`` is negative; :func:`pgd_maximize` climbs a scalar output.
Both run several restarts as one batch (the first from the given point or the domain's centre,
the others from :meth:`Domain.sample`), project every step with :meth:`Domain.project`,
respect a wall-clock budget, and work on a float64 evaluation-mode copy of the network, so
the caller's network (dtype, training flag, prune hooks, parameters) is never touched. Torch
runs single-threaded during the descent (the thread count is restored afterwards).

Steps: a signed gradient (L-infinity steepest descent) for boxes and L-infinity balls, an
L2-normalised gradient for L1 balls (whose projection soft-thresholds the step into a sparse
one). The default step size is ``2.5 * size / steps`` with ``size`` the half-width of the box
(Madry et al.'s choice, so that a run can cross the domain) and ``10 * radius / steps`` for an
L1 ball. Steps decay linearly to a tenth of that over the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn

from ..domains import Domain, L1Ball
from ..exceptions import InvalidOptionError, ShapeMismatchError
from ..network.extraction import float64_copy
from ..torch_threads import single_torch_thread
from ..validation import check_keys

__all__ = ["AttackResult", "MaximizeResult", "pgd_attack", "pgd_maximize"]


@dataclass
class AttackResult:
    """Outcome of :func:`pgd_attack`.

    Attributes
    ----------
    x : numpy.ndarray
        The best point found (smallest margin), float64, in the domain.
    margin : float
        ``logit[label] - logit[target]`` at ``x`` from a float64 forward pass (for
        ``target="any"`` the largest other logit is subtracted).
    success : bool
        Whether ``margin < 0``: ``x`` is not classified as ``label``.
    label : int
        The true label.
    target : int
        The target class (for ``"any"``, the class with the largest other logit at ``x``).
    seconds : float
        Wall-clock time.
    steps_run : int
        Number of gradient steps taken (each one moves all restarts).
    """

    x: np.ndarray
    margin: float
    success: bool
    label: int
    target: int
    seconds: float
    steps_run: int


@dataclass
class MaximizeResult:
    """Outcome of :func:`pgd_maximize`.

    Attributes
    ----------
    x : numpy.ndarray
        The best point found, float64, in the domain.
    value : float
        The output at ``x`` from a float64 forward pass.
    seconds : float
        Wall-clock time.
    steps_run : int
        Number of gradient steps taken (each one moves all restarts).
    """

    x: np.ndarray
    value: float
    seconds: float
    steps_run: int = 0


# --------------------------------------------------------------------------- validation


def _check_network(network: Any) -> None:
    if not isinstance(network, nn.Module):
        raise TypeError(f"network must be a torch.nn.Module, got {type(network).__name__}")


def _check_domain(domain: Any) -> None:
    if not isinstance(domain, Domain):
        raise InvalidOptionError(
            f"domain must be a Box, LinfBall or L1Ball, got {type(domain).__name__}"
        )


def _check_budget(steps: int, restarts: int, step_size: float | None, time_budget) -> None:
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be a positive integer, got {restarts!r}")
    if step_size is not None and not (np.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive number or None, got {step_size!r}")
    if time_budget is not None and not (time_budget > 0):
        raise ValueError(f"time_budget must be positive (seconds) or None, got {time_budget!r}")


def _default_step(domain: Domain, steps: int) -> float:
    if isinstance(domain, L1Ball):
        # an L2 step of r/25 (for 100 steps): longer than Madry's rule, which soft-thresholding
        # by the projection shortens; it gave lower margins on MNIST with radius 4.5
        return 10.0 * domain.radius / max(int(steps), 1)
    size = float(np.max(domain.upper - domain.lower)) / 2.0
    return 2.5 * size / max(int(steps), 1)


# --------------------------------------------------------------------------- engine


def _descend(
    loss: Callable[[torch.Tensor], torch.Tensor],
    domain: Domain,
    starts: np.ndarray,
    *,
    steps: int,
    step_size: float,
    deadline: float,
    stop_below: float | None,
) -> tuple[np.ndarray, float, int]:
    """Projected gradient descent on ``loss`` (one value per row) from every row of ``starts``.

    Returns the best point over all rows and iterates, its loss and the number of steps.
    """
    x = torch.from_numpy(domain.project(starts))
    l1 = isinstance(domain, L1Ball)
    best_x, best_value, step = x[0].numpy().copy(), np.inf, 0
    while True:  # evaluate, then step: steps + 1 evaluations at most
        x.requires_grad_(True)
        with torch.enable_grad():
            values = loss(x)
            (grad,) = torch.autograd.grad(values.sum(), x)
        values = values.detach().numpy()
        row = int(np.argmin(values))
        if values[row] < best_value:
            best_value, best_x = float(values[row]), x[row].detach().numpy().copy()
        if stop_below is not None and best_value < stop_below:
            break
        if step == steps or time.perf_counter() >= deadline:
            break
        with torch.no_grad():
            direction = _l1_direction(grad, x.detach(), domain) if l1 else grad.sign()
            # decay the step so that the last iterations refine rather than bounce
            scale = step_size * (1.0 - 0.9 * step / max(steps, 1))
            x = domain.project(x.detach() - scale * direction)
        step += 1
    return best_x, best_value, step


def _l1_direction(grad: torch.Tensor, x: torch.Tensor, domain: L1Ball) -> torch.Tensor:
    """An L2-normalised descent direction for an L1 ball."""
    return grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _starts(domain: Domain, first: np.ndarray, restarts: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    extra = domain.sample(restarts - 1, rng) if restarts > 1 else np.empty((0, domain.n))
    return np.vstack([first[None, :], extra])


def _prepare(network: nn.Module) -> nn.Module:
    model = float64_copy(network)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def _outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(np.array(x, dtype=np.float64, ndmin=2))).numpy()


# --------------------------------------------------------------------------- public


@dataclass(frozen=True)
class AttackOptions:
    """The options of an application's attack stage (``attack_options=``), validated.

    Defaults here are those of :func:`pgd_attack`; the applications give ``time_budget`` a
    share of their time limit unless it is set. A misspelled key raises
    :class:`~gurobi_sparse_surrogate.InvalidOptionError` naming it and the valid ones.

    Examples
    --------
    >>> AttackOptions.check({"steps": 20})
    {'steps': 20}
    >>> AttackOptions.check({"step": 20})
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: unknown attack option 'step'; did you \
mean 'steps' or 'step_size'? Valid attack options: restarts, step_size, steps, time_budget.
    """

    steps: int = 100
    restarts: int = 5
    step_size: float | None = None
    time_budget: float | None = 1.0

    def __post_init__(self) -> None:
        for name in ("steps", "restarts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise InvalidOptionError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("step_size", "time_budget"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise InvalidOptionError(f"{name} must be a positive number or None, got {value!r}")

    @classmethod
    def check(cls, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """``options`` as given (a dict), after checking every key and value."""
        options = dict(options or {})
        check_keys(options, (f.name for f in fields(cls)), "attack option")
        cls(**options)
        return options


def pgd_attack(
    network: nn.Module,
    x0: Any,
    domain: Domain,
    *,
    true_label: int | None = None,
    target: int | str = "runner-up",
    steps: int = 100,
    restarts: int = 5,
    step_size: float | None = None,
    seed: int = 0,
    time_budget: float | None = 1.0,
) -> AttackResult:
    """Search the domain for an input that the network does not classify as ``true_label``.

    Parameters
    ----------
    network : torch.nn.Module
        A classifier (``nn.Sequential``; float32 or float64; pruning masks allowed). It is not
        modified: the attack runs on a float64 evaluation-mode copy.
    x0 : array_like
        The reference input, shape ``(n,)``; the first restart starts there (projected onto
        the domain).
    domain : Box, LinfBall or L1Ball
        Where to search.
    true_label : int, optional
        Defaults to the network's prediction at ``x0``.
    target : "runner-up", "any" or int
        ``"runner-up"``: the class with the largest logit at ``x0`` other than the true
        label (the second largest when ``x0`` is classified correctly), the paper's choice;
        ``"any"``: whichever wrong class has the largest logit; an int: that class.
    steps : int
        Gradient steps per restart.
    restarts : int
        Number of starting points (run as one batch): ``x0`` and ``restarts - 1`` points
        from ``domain.sample``.
    step_size : float, optional
        Defaults to ``2.5 * half_width / steps`` for a box or L-infinity ball and
        ``10 * radius / steps`` for an L1 ball.
    seed : int
        Seed of the restarts' starting points.
    time_budget : float or None
        Wall-clock seconds; the attack stops after the step that exceeds it.

    Returns
    -------
    AttackResult
        The attack stops at the first adversarial point (``success=True``).

    Raises
    ------
    ShapeMismatchError
        When ``x0`` does not match the domain.
    ValueError
        For a bad label, target or budget.

    Examples
    --------
    >>> import torch
    >>> from gurobi_sparse_surrogate.domains import LinfBall
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    >>> result = pgd_attack(net, [0.5] * 4, LinfBall([0.5] * 4, 0.0), time_budget=None)
    >>> result.success, result.steps_run
    (False, 100)
    """
    _check_network(network)
    _check_domain(domain)
    _check_budget(steps, restarts, step_size, time_budget)
    start = time.perf_counter()
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape != (domain.n,):
        raise ShapeMismatchError(f"x0 has shape {x0.shape}; the domain has dimension {domain.n}")
    if not np.isfinite(x0).all():
        raise ValueError("x0 contains NaN or infinite values")
    model = _prepare(network)
    logits0 = _outputs(model, x0)[0]
    n_classes = logits0.size
    if n_classes < 2:
        raise ValueError(f"an attack needs at least 2 classes, the network has {n_classes} output")
    label = (
        int(np.argmax(logits0))
        if true_label is None
        else _class(true_label, n_classes, "true_label")
    )
    others = np.delete(np.arange(n_classes), label)
    if isinstance(target, str) and target == "runner-up":
        target_class: int | None = int(others[np.argmax(logits0[others])])
    elif isinstance(target, str) and target == "any":
        target_class = None
    elif isinstance(target, str):
        raise ValueError(f"target must be 'runner-up', 'any' or a class index, got {target!r}")
    else:
        target_class = _class(target, n_classes, "target")
        if target_class == label:
            raise ValueError(f"target {target_class} equals the true label")

    def margin(x: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        if target_class is not None:
            return logits[:, label] - logits[:, target_class]
        return logits[:, label] - logits[:, others].max(dim=1).values

    with single_torch_thread():
        best_x, _, steps_run = _descend(
            margin,
            domain,
            _starts(domain, x0, int(restarts), seed),
            steps=int(steps),
            step_size=step_size or _default_step(domain, steps),
            deadline=np.inf if time_budget is None else start + time_budget,
            stop_below=0.0,
        )
    best_x = domain.project(best_x)
    logits = _outputs(model, best_x)[0]
    chosen = int(others[np.argmax(logits[others])]) if target_class is None else target_class
    value = float(logits[label] - logits[chosen])
    return AttackResult(
        x=best_x,
        margin=value,
        success=value < 0,
        label=label,
        target=chosen,
        seconds=time.perf_counter() - start,
        steps_run=steps_run,
    )


def _class(value: Any, n_classes: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or not 0 <= int(value) < n_classes:
        raise ValueError(f"{name} must be a class index in [0, {n_classes}), got {value!r}")
    return int(value)


def pgd_maximize(
    network: nn.Module,
    domain: Domain,
    *,
    output_index: int = 0,
    steps: int = 100,
    restarts: int = 5,
    step_size: float | None = None,
    seed: int = 0,
    time_budget: float | None = 1.0,
) -> MaximizeResult:
    """Projected gradient ascent on one output of the network over the domain.

    A warm start for the function-maximisation application. The first restart starts at
    the domain's centre, the others at ``domain.sample`` points; the best iterate of all is
    returned, so the value is at least the value at the centre.

    Parameters
    ----------
    network : torch.nn.Module
        Not modified (a float64 evaluation-mode copy is used).
    domain : Box, LinfBall or L1Ball
    output_index : int
        Which output to maximise.
    steps, restarts, step_size, seed, time_budget
        As in :func:`pgd_attack`.

    Returns
    -------
    MaximizeResult

    Raises
    ------
    ValueError
        For a bad output index or budget.

    Examples
    --------
    >>> import torch
    >>> from gurobi_sparse_surrogate.domains import Box
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, -1.0]])), net[0].bias.zero_()
    >>> result = pgd_maximize(net, Box([0.0, 0.0], [1.0, 1.0]))
    >>> result.x.tolist(), round(result.value, 6)
    ([1.0, 0.0], 1.0)
    """
    _check_network(network)
    _check_domain(domain)
    _check_budget(steps, restarts, step_size, time_budget)
    start = time.perf_counter()
    model = _prepare(network)
    n_out = _outputs(model, domain.center).shape[1]
    index = _class(output_index, n_out, "output_index")

    def negative_output(x: torch.Tensor) -> torch.Tensor:
        return -model(x)[:, index]

    with single_torch_thread():
        best_x, _, steps_run = _descend(
            negative_output,
            domain,
            _starts(domain, np.asarray(domain.center), int(restarts), seed),
            steps=int(steps),
            step_size=step_size or _default_step(domain, steps),
            deadline=np.inf if time_budget is None else start + time_budget,
            stop_below=None,
        )
    best_x = domain.project(best_x)
    value = float(_outputs(model, best_x)[0, index])
    return MaximizeResult(best_x, value, time.perf_counter() - start, steps_run)
