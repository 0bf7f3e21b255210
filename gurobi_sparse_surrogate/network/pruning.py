"""Pruned networks: the :class:`SparseSequential` type and :func:`prune_network`.

:func:`prune_network` prunes a copy of a trained ``nn.Sequential`` with
:mod:`torch.nn.utils.prune` and returns a :class:`SparseSequential`, the type this package
dispatches to its sparse MILP formulation. The rules it follows:

* **Counts are exact.** With ``structure="global"`` the result has exactly
  ``round(sparsity * n)`` zero weights among the ``n`` weights of the pruned Linear layers
  (Python's ``round``, half to even); with ``"layer"`` each pruned layer has
  ``round(sparsity * n_layer)`` zeros; with ``"neuron"`` each hidden layer has
  ``round(sparsity * n_neurons)`` neurons whose incoming weights are all zero.
  torch's own float ``amount`` is relative to the weights still unpruned, so integer counts
  are passed to torch instead.
* **Existing zeros count as pruned.** Weights of the input that are already zero (masked or
  permanent zeros) are added to the mask and count towards the target; weights are never
  un-pruned. If the input already has more zeros than requested, nothing more is pruned and
  the achieved sparsity is the input's (larger) one.
* **Pruned neurons are dead.** With ``structure="neuron"`` the bias entries of neurons with
  all-zero incoming weights are masked too (``prune_bias=True``, the default), so such a
  neuron outputs ``relu(0) = 0`` and the embedding removes it; ``prune_bias=False`` keeps
  torch's behaviour (a constant neuron ``relu(b)``). The output layer is never neuron-pruned.
* **Iterative pruning.** ``rounds=R`` reaches the target in ``R`` steps, geometrically
  (round ``r`` keeps ``(1 - sparsity) ** (r / R)`` of the weights, the lottery-ticket
  schedule) or linearly (round ``r`` prunes ``sparsity * r / R``). After each round the
  network is optionally finetuned; with ``rewind=True`` the surviving weights and biases are
  reset to the input network's values after each round's mask is chosen, and the finetuning
  after the last round is skipped, so the result carries the input's weights under the final
  mask.
"""

from __future__ import annotations

import inspect
import math
import numbers
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from ..exceptions import (
    InvalidOptionError,
    NonFiniteWeightError,
    ShapeMismatchError,
    UnsupportedNetworkError,
)
from ..validation import check_keys
from .extraction import clone_network, effective_parameter
from .importance import INSTANCE_AWARE, _check_domain, activation_scores, bound_scores

#: Valid values of ``method``.
PRUNING_METHODS: tuple[str, ...] = ("magnitude", "random", *INSTANCE_AWARE)
#: Valid values of ``structure``.
STRUCTURES: tuple[str, ...] = ("global", "layer", "row", "neuron")
#: Valid values of ``schedule``.
SCHEDULES: tuple[str, ...] = ("geometric", "linear")


class SparseSequential(nn.Sequential):
    """An ``nn.Sequential`` produced by this package's pruning.

    It behaves exactly like ``nn.Sequential`` in torch. Its own type lets gurobi-ml's
    ``add_predictor_constr`` dispatch it to the sparse formulation of this package, while
    plain ``nn.Sequential`` networks keep gurobi-ml's own formulation.
    """


# --------------------------------------------------------------------------- reports


@dataclass
class LayerReport:
    """Sparsity of one Linear layer.

    Attributes
    ----------
    name : str
        Dotted module name in the network, e.g. ``"0"`` or ``"block.2"``.
    weights : int
        Number of weights (``n_out * n_in``).
    zeros : int
        Number of weights that are zero in the forward pass (masked or not).
    sparsity : float
        ``zeros / weights``.
    neurons : int
        Number of neurons (``n_out``).
    dead_neurons : int
        Neurons whose incoming weights are all zero and whose bias is zero (or absent).
    unused_neurons : int
        Neurons (channels) whose outgoing weights in the next Linear or Conv2d layer are all
        zero (0 for the last layer, and where the next layer reads a reshaped tensor).
    pruned : bool
        Whether the layer carries a ``torch.nn.utils.prune`` mask on its weight.
    """

    name: str
    weights: int
    zeros: int
    sparsity: float
    neurons: int
    dead_neurons: int
    unused_neurons: int
    pruned: bool


@dataclass
class PruningReport:
    """What pruning did to a network (see :func:`pruning_report`).

    Attributes
    ----------
    layers : list of LayerReport
        One entry per Linear layer, in forward order.
    weights, zeros : int
        Totals over all Linear layers.
    sparsity : float
        Overall share of zero weights over all Linear layers.
    pruned_sparsity : float or None
        Share of zero weights over the layers with a prune mask (the quantity the
        ``"global"`` structure targets); None when no layer has a mask.
    accuracy : float or None
        Classification accuracy on ``data`` (integer targets).
    mse : float or None
        Mean squared error on ``data`` (float targets).
    target_sparsity, method, structure, rounds : optional
        The request, when the report comes from :func:`prune_network`.
    seconds : float or None
        Wall time of :func:`prune_network`, finetuning included.
    finetune_seconds : float or None
        The part of ``seconds`` spent finetuning.
    """

    layers: list[LayerReport]
    weights: int
    zeros: int
    sparsity: float
    pruned_sparsity: float | None = None
    accuracy: float | None = None
    mse: float | None = None
    target_sparsity: float | None = None
    method: str | None = None
    structure: str | None = None
    rounds: int | None = None
    seconds: float | None = None
    finetune_seconds: float | None = None

    @property
    def dead_neurons(self) -> int:
        """Total number of dead neurons (zero incoming weights and zero bias)."""
        return sum(layer.dead_neurons for layer in self.layers)

    @property
    def unused_neurons(self) -> int:
        """Total number of neurons whose outgoing weights are all zero."""
        return sum(layer.unused_neurons for layer in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """The report as nested plain Python types (JSON-serialisable)."""
        return asdict(self)

    def __str__(self) -> str:
        head = "Pruning report"
        if self.method is not None:
            head += (
                f": {self.method} {self.structure} pruning to {self.target_sparsity:.4f}"
                f" in {self.rounds} round(s)"
            )
        if self.seconds is not None:
            head += f", {self.seconds:.3f} s"
            if self.finetune_seconds:
                head += f" ({self.finetune_seconds:.3f} s finetuning)"
        width = max([len("overall")] + [len(layer.name) for layer in self.layers])
        lines = [
            head,
            f"{'layer':<{width}}  {'weights':>9}  {'zeros':>9}  {'sparsity':>8}  "
            f"{'neurons':>7}  {'dead':>5}  {'unused':>6}  mask",
        ]
        for layer in self.layers:
            lines.append(
                f"{layer.name:<{width}}  {layer.weights:>9}  {layer.zeros:>9}  "
                f"{layer.sparsity:>8.4f}  {layer.neurons:>7}  {layer.dead_neurons:>5}  "
                f"{layer.unused_neurons:>6}  {'yes' if layer.pruned else 'no'}"
            )
        lines.append(
            f"{'overall':<{width}}  {self.weights:>9}  {self.zeros:>9}  {self.sparsity:>8.4f}  "
            f"{sum(layer.neurons for layer in self.layers):>7}  {self.dead_neurons:>5}  "
            f"{self.unused_neurons:>6}"
        )
        if self.pruned_sparsity is not None:
            lines.append(f"sparsity of the masked layers: {self.pruned_sparsity:.4f}")
        if self.accuracy is not None:
            lines.append(f"accuracy: {self.accuracy:.4f}")
        if self.mse is not None:
            lines.append(f"mse: {self.mse:.6g}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers


def _linear_modules(
    network: nn.Module, prefix: str = ""
) -> Iterator[tuple[str, nn.Linear | nn.Conv2d]]:
    """Yield the Linear and Conv2d modules of a (possibly nested) ``nn.Sequential`` in forward
    order (the modules whose weights are pruned)."""
    for name, module in network.named_children():
        full = f"{prefix}{name}"
        if isinstance(module, nn.Sequential):
            yield from _linear_modules(module, f"{full}.")
        elif isinstance(module, (nn.Linear, nn.Conv2d)):
            yield full, module


def _check_sequential(network: Any) -> None:
    if not isinstance(network, nn.Sequential):
        raise UnsupportedNetworkError(
            f"expected a torch.nn.Sequential, got {type(network).__name__}"
        )


def _has_mask(module: nn.Module, name: str) -> bool:
    return hasattr(module, f"{name}_mask") and hasattr(module, f"{name}_orig")


def _refresh(module: nn.Module) -> None:
    """Recompute the masked attributes (``weight = weight_orig * weight_mask``) now.

    The pruning hooks do this at each forward pass; after an in-place change of
    ``weight_orig`` the attribute is stale until then. It is computed without autograd so
    that the module stays deep-copyable (the next forward pass recomputes it with autograd).
    """
    with torch.no_grad():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                hook(module, None)


def _split_data(data: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"data must be a pair (X, y), got {type(data).__name__}")
    x, y = (
        v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in data
    )
    if x.ndim < 2 or y.ndim < 1 or len(x) != len(y):
        raise ShapeMismatchError(
            f"data must be X of shape (k, n_in) and y of length k; got X {x.shape}, y {y.shape}"
        )
    return x, y


def _is_classification(y: np.ndarray) -> bool:
    return y.dtype.kind in "iub"


def _regression_targets(y: np.ndarray, n_out: int) -> np.ndarray:
    return y.reshape(-1, 1) if y.ndim == 1 and n_out == 1 else y


# --------------------------------------------------------------------------- report


def pruning_report(network: nn.Module, data: Any = None) -> PruningReport:
    """Count zeros, dead neurons and unused neurons of every Linear layer of ``network``.

    Works on any ``nn.Sequential`` (nested ones included), pruned with
    :mod:`torch.nn.utils.prune` or not; weights are read as the forward pass uses them
    (``weight_orig * weight_mask``). The network is not modified.

    Parameters
    ----------
    network : torch.nn.Sequential
        The network.
    data : tuple (X, y), optional
        Evaluation data. Integer ``y`` gives the classification accuracy (argmax of the
        outputs), float ``y`` the mean squared error.

    Returns
    -------
    PruningReport

    Raises
    ------
    UnsupportedNetworkError
        If ``network`` is not an ``nn.Sequential`` or has no Linear layer.
    ShapeMismatchError
        If ``X`` and ``y`` do not have the same number of rows.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     net[0].weight[1] = 0.0
    ...     net[0].bias[1] = 0.0
    >>> report = pruning_report(net)
    >>> report.layers[0].zeros, report.layers[0].dead_neurons
    (3, 1)
    """
    _check_sequential(network)
    modules = list(_linear_modules(network))
    if not modules:
        raise UnsupportedNetworkError("the network has no nn.Linear or nn.Conv2d layer")
    weights = [effective_parameter(m, "weight") for _, m in modules]
    biases = [effective_parameter(m, "bias") for _, m in modules]
    layers = []
    for i, (name, module) in enumerate(modules):
        w = weights[i]
        zero_rows = (w.flatten(1) == 0).all(dim=1)
        if biases[i] is not None:
            zero_rows &= biases[i].reshape(-1) == 0
        unused = 0
        following = weights[i + 1] if i + 1 < len(modules) else None
        groups = getattr(modules[i + 1][1], "groups", 1) if following is not None else 1
        if (
            following is not None
            and following.dim() == w.dim()
            and following.shape[1] * groups == w.shape[0]
        ):
            # an input (channel) of group g is read by that group's outputs only
            per_group = following.shape[1]
            zero = (following == 0).reshape(groups, -1, per_group, following[0, 0].numel())
            unused = int(zero.all(dim=3).all(dim=1).sum())
        zeros = int((w == 0).sum())
        layers.append(
            LayerReport(
                name=name,
                weights=w.numel(),
                zeros=zeros,
                sparsity=zeros / w.numel() if w.numel() else 0.0,
                neurons=w.shape[0],
                dead_neurons=int(zero_rows.sum()),
                unused_neurons=unused,
                pruned=_has_mask(module, "weight"),
            )
        )
    total = sum(layer.weights for layer in layers)
    zeros = sum(layer.zeros for layer in layers)
    masked = [layer for layer in layers if layer.pruned]
    masked_total = sum(layer.weights for layer in masked)
    report = PruningReport(
        layers=layers,
        weights=total,
        zeros=zeros,
        sparsity=zeros / total if total else 0.0,
        pruned_sparsity=(sum(layer.zeros for layer in masked) / masked_total)
        if masked_total
        else None,
    )
    if data is not None:
        x, y = _split_data(data)
        from .extraction import network_forward

        out = network_forward(network, x.reshape(len(x), -1).astype(np.float64))
        if _is_classification(y):
            report.accuracy = float(np.mean(out.argmax(axis=1) == y.reshape(-1)))
        else:
            target = _regression_targets(y.astype(np.float64), out.shape[1])
            report.mse = float(np.mean((out - target) ** 2))
    return report


# --------------------------------------------------------------------------- finetuning


@dataclass
class FinetuneConfig:
    """Settings of the built-in finetuning loop (Adam, minibatches, seeded).

    The loss is cross-entropy when the targets are integers (classification) and mean
    squared error when they are floats (regression). The prune masks keep pruned weights at
    zero during training.

    Attributes
    ----------
    epochs : int
        Passes over the data per finetuning call.
    lr : float
        Adam learning rate.
    batch_size : int
        Minibatch size.
    seed : int or None
        Seed of the shuffling and of dropout; None uses torch's global generator.
    weight_decay : float
        Adam weight decay.
    """

    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64
    seed: int | None = 0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, numbers.Integral) and self.epochs >= 0):
            raise ValueError(f"finetune epochs must be a non-negative integer, got {self.epochs!r}")
        if not (isinstance(self.batch_size, numbers.Integral) and self.batch_size >= 1):
            raise ValueError(
                f"finetune batch_size must be a positive integer, got {self.batch_size!r}"
            )
        if not (isinstance(self.lr, numbers.Real) and self.lr > 0):
            raise ValueError(f"finetune lr must be a positive number, got {self.lr!r}")


def _as_finetune(finetune: Any) -> Callable[[nn.Module], None] | FinetuneConfig | None:
    if finetune is None or isinstance(finetune, FinetuneConfig):
        return finetune
    if isinstance(finetune, Mapping):
        check_keys(finetune, (f.name for f in fields(FinetuneConfig)), "finetune option")
        return FinetuneConfig(**finetune)
    if callable(finetune):
        return finetune
    raise ValueError(
        "finetune must be None, a callable finetune(network) -> None, a dict of "
        f"FinetuneConfig options or a FinetuneConfig; got {type(finetune).__name__}"
    )


def _train(network: nn.Module, data: tuple[np.ndarray, np.ndarray], cfg: FinetuneConfig) -> None:
    """The built-in finetuning loop; trains ``network`` (masks in place) in place."""
    x_np, y_np = data
    param = next(network.parameters())
    x = torch.as_tensor(x_np.reshape(len(x_np), -1), dtype=param.dtype, device=param.device)
    if _is_classification(y_np):
        y = torch.as_tensor(y_np.reshape(-1), dtype=torch.long, device=param.device)
        loss_fn: nn.Module = nn.CrossEntropyLoss()
    else:
        y = torch.as_tensor(y_np, dtype=param.dtype, device=param.device)
        loss_fn = nn.MSELoss()
    was_training = network.training
    optimizer = torch.optim.Adam(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator()
    if cfg.seed is not None:
        generator.manual_seed(cfg.seed)
    else:
        generator.seed()
    network.train()
    with torch.random.fork_rng(devices=[]):
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
        for _ in range(cfg.epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                optimizer.zero_grad()
                out = network(x[idx])
                target = y[idx]
                if target.dim() == 1 and out.dim() == 2 and not _is_classification(y_np):
                    target = target.reshape(-1, 1) if out.shape[1] == 1 else target
                loss_fn(out, target).backward()
                optimizer.step()
    network.train(was_training)


# --------------------------------------------------------------------------- pruning


def _check_sparsity(sparsity: Any) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, numbers.Real):
        raise ValueError(
            f"sparsity must be a real number in [0, 1), got {type(sparsity).__name__} {sparsity!r}"
        )
    value = float(sparsity)
    if math.isnan(value) or not 0.0 <= value < 1.0:
        raise ValueError(
            f"sparsity must be in [0, 1) (the share of weights set to zero), got {sparsity!r}"
        )
    return value


def _check_choice(value: Any, valid: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid values are: {', '.join(valid)}")
    return value


def _round_targets(sparsity: float, rounds: int, schedule: str) -> list[float]:
    steps = np.arange(1, rounds + 1) / rounds
    if schedule == "geometric":
        values = 1.0 - (1.0 - sparsity) ** steps
    else:
        values = sparsity * steps
    values[-1] = sparsity
    return values.tolist()


def _fold_zeros(module: nn.Linear) -> torch.Tensor:
    """Mask the weights that are zero already (every module leaves with a weight mask);
    return the effective weight."""
    w = effective_parameter(module, "weight")
    if not torch.isfinite(w).all():
        raise NonFiniteWeightError("cannot prune a Linear layer with NaN or infinite weights")
    nonzero = w != 0
    mask = getattr(module, "weight_mask", None)
    if mask is None or not torch.equal(nonzero, mask.bool()):
        prune.custom_from_mask(module, "weight", mask=nonzero.to(w.dtype))
    return w


def _prune_round(
    modules: list[nn.Linear],
    level: float,
    method: str,
    structure: str,
    prune_bias: bool,
    scores: list[torch.Tensor] | None = None,
) -> None:
    """Prune ``modules`` (in place) so that the exact counts of ``level`` are reached.

    ``scores`` are the importance scores of an instance-aware criterion (one tensor per module,
    shaped like its weight); without them ``method`` decides (magnitude or random).
    """
    current = [_fold_zeros(m) for m in modules]
    if scores is None:
        scores = [w.abs() for w in current] if method == "magnitude" else None
    if structure == "global":
        total = sum(w.numel() for w in current)
        k = round(level * total) - sum(int((w == 0).sum()) for w in current)
        if k > 0:
            prune.global_unstructured(
                [(m, "weight") for m in modules],
                pruning_method=prune.RandomUnstructured if scores is None else prune.L1Unstructured,
                importance_scores=None
                if scores is None
                else {(m, "weight"): s for m, s in zip(modules, scores, strict=True)},
                amount=k,
            )
    elif structure == "layer":
        for i, (m, w) in enumerate(zip(modules, current, strict=True)):
            k = round(level * w.numel()) - int((w == 0).sum())
            if k <= 0:
                continue
            if scores is None:
                prune.random_unstructured(m, "weight", amount=k)
            else:
                prune.l1_unstructured(m, "weight", amount=k, importance_scores=scores[i])
    elif structure == "row":
        for i, (m, w) in enumerate(zip(modules, current, strict=True)):
            score = torch.rand(w.shape, dtype=torch.float64) if scores is None else scores[i]
            prune.custom_from_mask(m, "weight", mask=_row_mask(w, score, level))
    else:  # neuron
        for i, (m, w) in enumerate(zip(modules, current, strict=True)):
            k = round(level * w.shape[0]) - int((w.flatten(1) == 0).all(dim=1).sum())
            if k > 0:
                if scores is None:
                    prune.random_structured(m, "weight", amount=k, dim=0)
                else:
                    prune.ln_structured(
                        m, "weight", amount=k, n=2, dim=0, importance_scores=scores[i]
                    )
            if prune_bias and m.bias is not None:
                alive = effective_parameter(m, "weight").flatten(1).ne(0).any(dim=1)
                bias = effective_parameter(m, "bias")
                if bool(((~alive) & (bias != 0)).any()):
                    prune.custom_from_mask(m, "bias", mask=alive.to(bias.dtype))


def _row_mask(weight: torch.Tensor, score: torch.Tensor, level: float) -> torch.Tensor:
    """A mask with ``round(level * n_in)`` zeros in every row: the lowest scores, existing zeros
    first (never un-pruned, so a row that has more zeros already keeps them all)."""
    zero = weight == 0
    per_row = round(level * weight.shape[1])
    ranked = torch.where(zero, -torch.inf, score.to(torch.float64).abs())
    order = torch.argsort(ranked, dim=1, stable=True)[:, :per_row]
    mask = torch.ones_like(weight)
    mask.scatter_(1, order, 0.0)
    return mask * (~zero).to(weight.dtype)


def _remove_dead_neurons(modules: list[nn.Linear], dead: list[torch.Tensor]) -> None:
    """Zero the incoming weights and the bias of neurons that output 0 over the whole domain."""
    for m, rows in zip(modules, dead, strict=True):
        if not bool(rows.any()):
            continue
        w = effective_parameter(m, "weight")
        prune.custom_from_mask(m, "weight", mask=(~rows).reshape(-1, 1).expand_as(w).to(w.dtype))
        if m.bias is not None:
            b = effective_parameter(m, "bias")
            prune.custom_from_mask(m, "bias", mask=(~rows).to(b.dtype))


def _instance_scores(
    network: nn.Module,
    targets: list[tuple[str, nn.Linear]],
    method: str,
    domain: Any,
    n_samples: int,
    seed: int | None,
    bound_method: str,
) -> list[torch.Tensor]:
    """Scores of an instance-aware criterion for the current (masked) network."""
    names = [name for name, _ in targets]
    modules = [m for _, m in targets]
    if method == "activation":
        return activation_scores(network, modules, domain, n_samples, seed)
    scores, dead = bound_scores(network, names, modules, domain, bound_method)
    _remove_dead_neurons(modules, dead)
    return scores


def _rewind(modules: list[nn.Linear], snapshot: list[dict[str, torch.Tensor]]) -> None:
    with torch.no_grad():
        for module, saved in zip(modules, snapshot, strict=True):
            for name, value in saved.items():
                target = getattr(module, f"{name}_orig" if _has_mask(module, name) else name)
                target.copy_(value)


def _make_permanent(module: nn.Module) -> None:
    names = [
        hook._tensor_name
        for hook in list(module._forward_pre_hooks.values())
        if isinstance(hook, prune.BasePruningMethod)
    ]
    for name in names:
        prune.remove(module, name)


def prune_network(
    network: nn.Sequential,
    sparsity: float,
    *,
    method: str = "magnitude",
    structure: str = "global",
    prune_output: bool = True,
    rounds: int = 1,
    schedule: str = "geometric",
    finetune: Callable[[nn.Module], None] | Mapping[str, Any] | FinetuneConfig | None = None,
    rewind: bool = False,
    data: Any = None,
    seed: int | None = None,
    prune_bias: bool = True,
    permanent: bool = False,
    domain: Any = None,
    n_samples: int = 256,
    bound_method: str = "linear",
) -> SparseSequential:
    """Prune a copy of ``network`` to an exact sparsity with :mod:`torch.nn.utils.prune`.

    The input is deep-copied first and never modified (parameters, buffers, hooks and
    training flag). The returned :class:`SparseSequential` holds the copied modules; its
    pruned Linear layers keep torch's reparametrisation (``weight_orig`` and ``weight_mask``,
    plus ``bias_orig``/``bias_mask`` for neuron pruning) unless ``permanent=True``. A report
    is attached as ``result.pruning_report`` (see :class:`PruningReport`). The counting rules
    (exact counts, existing zeros, dead neurons, schedules) are in the module docstring.

    Parameters
    ----------
    network : torch.nn.Sequential
        A network of Linear and Conv2d layers (and the other modules the embedding accepts),
        possibly nested or already pruned with :mod:`torch.nn.utils.prune`. The instance-aware
        methods and ``structure="row"`` prune Linear layers only and refuse a CNN.
    sparsity : float
        Target share of zero weights in ``[0, 1)`` (of neurons per hidden layer for
        ``structure="neuron"``).
    method : {"magnitude", "random", "activation", "bound"}
        ``"magnitude"`` prunes the smallest weights in absolute value (the paper's MP; the
        smallest L2 row norms for neurons); ``"random"`` is a control, reproducible with
        ``seed``. The instance-aware criteria need ``domain`` (see
        :mod:`~gurobi_sparse_surrogate.network.importance`): ``"activation"`` scores a weight by
        ``|w| * ||a||_2``, the activation it multiplies sampled over the domain (Wanda);
        ``"bound"`` by ``|w| * max(|l|, |u|)``, its largest contribution over the domain from
        sound bounds, after removing the neurons that are inactive over the whole domain
        (which changes no output there). Use ``"bound"`` when the surrogate is solved over one
        small domain (an adversarial ball): it keeps what can matter there and prunes
        losslessly first; ``"activation"`` when typical rather than worst-case inputs of the
        domain matter; ``"magnitude"`` when there is no single domain.
    structure : {"global", "layer", "row", "neuron"}
        ``"global"``: unstructured over all pruned layers together, ``sparsity`` is the share
        of zeros over all their weights. ``"layer"``: unstructured, the same sparsity in each
        pruned layer. ``"row"``: unstructured, the same number of zeros in every row (output
        neuron) of each pruned layer, the comparison group of Wanda. ``"neuron"``: whole
        neurons (rows of the weight; whole output channels of a Conv2d) in each hidden layer;
        the output layer is never neuron-pruned.
    prune_output : bool
        Whether the unstructured modes also prune the output (last Linear) layer, as the
        paper does. Ignored for ``"neuron"``.
    rounds : int
        Number of pruning rounds; the target is reached at the last one.
    schedule : {"geometric", "linear"}
        Sparsity after round ``r`` of ``R``: ``1 - (1 - sparsity) ** (r / R)`` or
        ``sparsity * r / R``.
    finetune : callable, dict, FinetuneConfig or None
        Training after each round: a callable ``finetune(network) -> None`` that trains the
        masked network in place, or the options of the built-in loop (:class:`FinetuneConfig`:
        ``epochs``, ``lr``, ``batch_size``, ``seed``, ``weight_decay``), which needs ``data``.
    rewind : bool
        Reset the surviving weights and biases to the input's values after each round's mask
        is chosen (lottery-ticket style); the finetuning after the last round is skipped.
    data : tuple (X, y), optional
        Training data of the built-in finetuning and evaluation data of the report. Integer
        ``y``: classification (cross-entropy, accuracy); float ``y``: regression (MSE).
    seed : int, optional
        Seed of random pruning. torch's global generator is left untouched when given.
    prune_bias : bool
        For ``"neuron"``: also mask the bias of neurons with all-zero incoming weights, so
        that they are dead.
    permanent : bool
        Remove the reparametrisation (``prune.remove``), leaving plain zero weights.
    domain : Box, LinfBall or L1Ball, optional
        The instance's input domain, required by ``method="activation"`` and ``"bound"``.
    n_samples : int
        Points sampled from ``domain`` by ``method="activation"`` (seeded with ``seed``).
    bound_method : str
        Bounding method (a key of :data:`~gurobi_sparse_surrogate.BOUND_METHODS`) of
        ``method="bound"``.

    Returns
    -------
    SparseSequential

    Raises
    ------
    ValueError
        For a sparsity that is not a number in ``[0, 1)``, an unknown method, structure or
        schedule, a bad ``rounds`` or ``finetune``, built-in finetuning without ``data``, or
        an instance-aware method without ``domain``.
    ShapeMismatchError
        If ``domain`` does not have the network's number of inputs.
    UnsupportedNetworkError
        If ``network`` is not an ``nn.Sequential``, has no Linear layer, or has no Linear
        layer the chosen structure may prune (only an output layer).
    NonFiniteWeightError
        If a pruned layer has NaN or infinite weights.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(
    ...     torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    ... )
    >>> sparse = prune_network(net, 0.75)
    >>> int((sparse[0].weight == 0).sum() + (sparse[2].weight == 0).sum())
    36
    >>> sparse.pruning_report.sparsity
    0.75
    """
    start = time.perf_counter()
    sparsity = _check_sparsity(sparsity)
    method = _check_choice(method, PRUNING_METHODS, "pruning method")
    structure = _check_choice(structure, STRUCTURES, "pruning structure")
    schedule = _check_choice(schedule, SCHEDULES, "schedule")
    if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    finetune = _as_finetune(finetune)
    train_data = None
    if isinstance(finetune, FinetuneConfig):
        if data is None:
            raise ValueError("built-in finetuning needs data=(X, y)")
        train_data = _split_data(data)
    _check_sequential(network)
    first = next((m for _, m in _linear_modules(network)), None)
    if first is None:
        raise UnsupportedNetworkError("the network has no nn.Linear or nn.Conv2d layer to prune")
    convolutions = [name for name, m in _linear_modules(network) if isinstance(m, nn.Conv2d)]
    if convolutions and (method in INSTANCE_AWARE or structure == "row"):
        raise UnsupportedNetworkError(
            f"method {method!r} with structure {structure!r} prunes Linear layers only, and "
            f"module {convolutions[0]!r} is a Conv2d; use method 'magnitude' or 'random' with "
            "structure 'global', 'layer' or 'neuron' (whole output channels) on a CNN"
        )
    if method in INSTANCE_AWARE:
        domain = _check_domain(domain, method, first.in_features)
        if (
            isinstance(n_samples, bool)
            or not isinstance(n_samples, numbers.Integral)
            or n_samples < 1
        ):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        if method == "bound":
            from ..bounds import METHODS as BOUND_METHODS

            bound_method = _check_choice(bound_method, tuple(sorted(BOUND_METHODS)), "bound_method")
    elif domain is not None:
        raise ValueError(
            f"domain is used by the instance-aware methods {INSTANCE_AWARE}, not by {method!r}"
        )

    copied = clone_network(network)
    # _modules, not named_children(): a module used at several places stays at each of them
    sparse = SparseSequential(OrderedDict(copied._modules))
    sparse.training = copied.training
    named_linears = list(_linear_modules(sparse))
    linears = [m for _, m in named_linears]
    if structure == "neuron" or not prune_output:
        named_targets = named_linears[:-1]
        if not named_targets:
            why = (
                "the output layer is never neuron-pruned"
                if structure == "neuron"
                else "prune_output=False excludes the output layer"
            )
            raise UnsupportedNetworkError(
                f"the network's only Linear layer is its output layer and {why}: "
                "there is nothing to prune"
            )
    else:
        named_targets = named_linears
    snapshot = (
        [
            {
                name: effective_parameter(m, name).clone()
                for name in ("weight", "bias")
                if getattr(m, name, None) is not None
            }
            for m in linears
        ]
        if rewind
        else None
    )

    targets = [m for _, m in named_targets]
    finetune_seconds = 0.0
    for r, level in enumerate(_round_targets(sparsity, int(rounds), schedule), start=1):
        scores = None
        if method in INSTANCE_AWARE:
            scores = _instance_scores(
                sparse, named_targets, method, domain, n_samples, seed, bound_method
            )
        if method == "random" and seed is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed) + r - 1)
                _prune_round(targets, level, method, structure, prune_bias)
        else:
            _prune_round(targets, level, method, structure, prune_bias, scores)
        if snapshot is not None:
            _rewind(linears, snapshot)
        if finetune is not None and not (rewind and r == rounds):
            t0 = time.perf_counter()
            if isinstance(finetune, FinetuneConfig):
                _train(sparse, train_data, finetune)
            else:
                finetune(sparse)
            finetune_seconds += time.perf_counter() - t0
    for m in linears:
        if permanent:
            _make_permanent(m)
        else:
            _refresh(m)
    seconds = time.perf_counter() - start

    report = pruning_report(sparse, data)
    report.target_sparsity = sparsity
    report.method = method
    report.structure = structure
    report.rounds = int(rounds)
    report.seconds = seconds
    report.finetune_seconds = finetune_seconds
    sparse.pruning_report = report
    return sparse


def check_prune_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate the keyword options of :func:`prune_network` given as a dict (``prune_options``
    of :class:`~gurobi_sparse_surrogate.SurrogateSwap` and the applications): an unknown key
    raises :class:`~gurobi_sparse_surrogate.exceptions.InvalidOptionError` naming it and the
    valid ones. Values are checked by :func:`prune_network` itself.

    Examples
    --------
    >>> check_prune_options({"method": "bound", "structur": "row"})
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: unknown pruning option 'structur'; did you mean 'structure'? Valid pruning options: bound_method, data, domain, finetune, method, n_samples, permanent, prune_bias, prune_output, rewind, rounds, schedule, seed, structure.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise InvalidOptionError(
            f"prune_options must be a dict of prune_network options, got {type(options).__name__}"
        )
    valid = [
        name
        for name, p in inspect.signature(prune_network).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    check_keys(options, valid, "pruning option", {"sparsity": "a surrogate is given as a sparsity"})
    return dict(options)


__all__ = [
    "FinetuneConfig",
    "check_prune_options",
    "LayerReport",
    "PRUNING_METHODS",
    "PruningReport",
    "SCHEDULES",
    "STRUCTURES",
    "SparseSequential",
    "prune_network",
    "pruning_report",
]
