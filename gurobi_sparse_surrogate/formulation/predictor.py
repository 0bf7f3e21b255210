"""The predictor constraint object: a sparse, bound-tightened embedding of a torch network."""

from __future__ import annotations

import io
import logging
import time
from typing import Any

import gurobipy as gp
import numpy as np
from gurobi_ml.exceptions import NoSolutionError
from gurobi_ml.modeling._var_utils import validate_input_vars, validate_output_vars
from gurobi_ml.modeling.base_predictor_constr import AbstractPredictorConstr
from torch import nn

from ..bounds.cache import BoundsCache, cached_compute_bounds
from ..bounds.problem import NetworkBounds, post_activation
from ..exceptions import ShapeMismatchError, UnboundedInputError
from ..license import check_model_size
from ..network.extraction import Float64Network, extract_layers
from ..verbosity import verbose_logging
from .planning import (
    CATEGORIES,
    RELU_FORMULATIONS,
    LayerPlan,
    LayerSize,
    affine_expression,
    build_layer,
    layer_size,
    plan_network,
)

logger = logging.getLogger(__name__)

_SHRINK_ADVICE = (
    "To shrink it: use relu_formulation='max' (no binary variables and one linear constraint "
    "per neuron; max constraints are not counted), tighten the bounds (bounds='linear', 'lp' or "
    "'auto', or a smaller input domain) so that more neurons are stable and removed, prune the "
    "network (prune_network), or use a full Gurobi licence. Pass check_size=False to build anyway."
)


class SparseSequentialConstr(AbstractPredictorConstr):
    """A torch ``nn.Sequential`` embedded with the sparsity-aware formulation.

    Created by :func:`~gurobi_sparse_surrogate.add_sparse_predictor_constr` (or by
    ``gurobi_ml.add_predictor_constr`` for a :class:`~gurobi_sparse_surrogate.SparseSequential`);
    do not instantiate it directly.

    Attributes
    ----------
    predictor : torch.nn.Sequential
        The embedded network (never modified).
    layers : list of Layer
        The extracted sparse layers.
    bounds : NetworkBounds
        Pre-activation bounds used by the formulation.
    plans : list of list of LayerPlan
        For each input row, how each layer was formulated.
    relu_formulation : str
    """

    def __init__(
        self,
        gp_model: gp.Model,
        predictor: nn.Module,
        input_vars: Any,
        output_vars: Any = None,
        *,
        relu_formulation: str = "bigm",
        bounds: str | NetworkBounds = "auto",
        domain: Any = None,
        check_size: bool = True,
        bound_options: dict | None = None,
        bound_cache: bool | BoundsCache = True,
        **kwargs: Any,
    ) -> None:
        if relu_formulation not in RELU_FORMULATIONS:
            raise ValueError(
                f"unknown relu_formulation {relu_formulation!r}; choose one of {RELU_FORMULATIONS}"
            )
        self.predictor = predictor
        self.layers = extract_layers(predictor)
        self.relu_formulation = relu_formulation
        #: what rebuilding this embedding takes (used by SurrogateSwap to restore it)
        self._rebuild_options = {
            "relu_formulation": relu_formulation,
            "bounds": bounds,
            "domain": domain,
            "check_size": check_size,
            "bound_options": bound_options,
            "bound_cache": bound_cache,
        }
        self._input_shape = self.layers[0].n_in
        self._output_shape = self.layers[-1].n_out
        self._float64_network = None
        self.bounds: NetworkBounds | None = None
        self.plans: list[list[LayerPlan]] = []
        self._added_nonzeros = 0
        self._default_name = "sparse_sequential"
        started = time.perf_counter()
        with verbose_logging(bool(kwargs.get("verbose", False))):
            super().__init__(gp_model, input_vars, output_vars, **kwargs)
            self._log_build(time.perf_counter() - started)

    # -- building -------------------------------------------------------------------------

    def _build_submodel(self, gp_model, *args, **kwargs):
        self._input = self._flatten_image_input(self._input)
        self._input, self._input_columns, self._input_index = validate_input_vars(
            gp_model, self._input
        )
        n_in = self._input.shape[1]
        if n_in != self._input_shape:
            image = self.layers[0].input_shape
            shape = f" (an image of shape {image}, flattened)" if len(image) > 1 else ""
            raise ShapeMismatchError(
                f"the network expects {self._input_shape} inputs per sample{shape} but the "
                f"input variables have shape {tuple(self._input.shape)}"
            )
        if self._output is not None:
            self._output = validate_output_vars(self._output)
            expected = (self._input.shape[0], self._output_shape)
            if self._output.size != np.prod(expected):
                raise ShapeMismatchError(
                    f"the network has {self._output_shape} outputs per sample and there are "
                    f"{self._input.shape[0]} samples, so the output variables should have shape "
                    f"{expected}; got {tuple(self._output.shape)}"
                )
            self._output = self._output.reshape(expected)
        self.bounds = self._compute_bounds(gp_model)
        k = self._input.shape[0]
        self.plans = [
            plan_network(
                self.layers, [b[s] for b in self.bounds.lower], [b[s] for b in self.bounds.upper]
            )
            for s in range(k)
        ]
        self._check_unbounded()
        size = self._planned_size()
        if self._rebuild_options["check_size"]:
            check_model_size(
                gp_model,
                size.variables,
                size.constraints,
                size.binaries,
                raise_error=True,
                advice=_SHRINK_ADVICE,
            )
        gp_model.update()
        nonzeros_before = gp_model.NumNZs
        if self._output is None:
            lo, hi = post_activation(
                self.bounds.lower[-1], self.bounds.upper[-1], self.layers[-1].relu
            )
            self._output = gp_model.addMVar(
                (k, self._output_shape),
                lb=np.where(np.isfinite(lo), lo, -gp.GRB.INFINITY),
                ub=np.where(np.isfinite(hi), hi, gp.GRB.INFINITY),
                name=self._name_var("out"),
            )
        self._mip_model(**kwargs)
        gp_model.update()
        self._added_nonzeros = gp_model.NumNZs - nonzeros_before
        return self

    def _log_build(self, seconds: float) -> None:
        stats = self.stats
        logger.info(
            "embedded %s: %d variables (%d binary), %d linear and %d general constraints, "
            "%d nonzeros, %d of %d neurons removed; bounds %s %.3f s, total %.3f s",
            self._name,
            stats["variables"],
            stats["binaries"],
            stats["constraints"],
            stats["general_constraints"],
            stats["nonzeros"],
            sum(row["removed"] for row in stats["layers"]),
            sum(row["neurons"] for row in stats["layers"]),
            stats["bounds_method"],
            stats["bounds_seconds"],
            seconds,
        )

    def _flatten_image_input(self, input_vars: Any) -> Any:
        """``(C, H, W)`` or ``(k, C, H, W)`` input variables as ``(1 or k, C H W)`` rows."""
        if not isinstance(input_vars, gp.MVar) or input_vars.ndim <= 2:
            return input_vars
        image = tuple(self.layers[0].input_shape)
        shape = tuple(input_vars.shape)
        if shape[-len(image) :] != image or input_vars.ndim not in (len(image), len(image) + 1):
            raise ShapeMismatchError(
                f"the network reads images of shape {image} but the input variables have shape "
                f"{shape}; pass variables of shape {image}, (k, *{image}) or flat ones"
            )
        return input_vars.reshape(-1, int(np.prod(image)))

    def _compute_bounds(self, gp_model: gp.Model) -> NetworkBounds:
        k = self._input.shape[0]
        method, domain = self._rebuild_options["bounds"], self._rebuild_options["domain"]
        if isinstance(method, NetworkBounds):
            method.check_shapes(self.layers, k)
            return method
        if not isinstance(method, str):
            raise TypeError(
                "bounds must be the name of a bounding method or a NetworkBounds object, got "
                f"{type(method).__name__}"
            )
        gp_model.update()
        lower = np.asarray(self._input.LB, dtype=np.float64).reshape(k, -1)
        upper = np.asarray(self._input.UB, dtype=np.float64).reshape(k, -1)
        lower[lower <= -gp.GRB.INFINITY] = -np.inf
        upper[upper >= gp.GRB.INFINITY] = np.inf
        if domain is not None:
            if getattr(domain, "n", self._input_shape) != self._input_shape:
                raise ShapeMismatchError(
                    f"the domain has dimension {domain.n}, the network {self._input_shape} inputs"
                )
            lower = np.maximum(lower, domain.lower)
            upper = np.minimum(upper, domain.upper)
        options = dict(self._rebuild_options["bound_options"] or {})
        options.setdefault("verbose", bool(getattr(self, "verbose", False)))
        return cached_compute_bounds(
            self.layers,
            lower,
            upper,
            method,
            domain,
            cache=self._rebuild_options["bound_cache"],
            **options,
        )

    def _check_unbounded(self) -> None:
        if self.relu_formulation != "bigm":
            return
        for plans in self.plans:
            for plan in plans:
                u = plan.unstable
                if u.any() and not (
                    np.isfinite(plan.lower[u]).all() and np.isfinite(plan.upper[u]).all()
                ):
                    lb = np.asarray(self._input.LB).reshape(self._input.shape)
                    ub = np.asarray(self._input.UB).reshape(self._input.shape)
                    free = np.flatnonzero(
                        ((lb <= -gp.GRB.INFINITY) | (ub >= gp.GRB.INFINITY)).any(axis=0)
                    )
                    shown = ", ".join(map(str, free[:20])) + (" ..." if free.size > 20 else "")
                    raise UnboundedInputError(
                        f"the big-M formulation needs finite bounds, but {plan.layer.name} has "
                        f"unstable neurons with infinite bounds because inputs [{shown}] "
                        f"({free.size} of {self._input_shape}) are unbounded; set lb/ub on those "
                        "input variables, pass a bounded domain=, or use "
                        "relu_formulation='max' or 'indicator'"
                    )

    def _planned_size(self) -> LayerSize:
        total = LayerSize()
        for plans in self.plans:
            hidden = plans if self.layers[-1].relu else plans[:-1]
            for plan in hidden:
                total += layer_size(plan, self.relu_formulation)
            total += LayerSize(constraints=self._output_shape)  # output rows
        if self._output is None:
            total += LayerSize(variables=self._input.shape[0] * self._output_shape)
        return total

    def _mip_model(self, **kwargs):
        model = self.gp_model
        final_relu = self.layers[-1].relu
        for s, plans in enumerate(self.plans):
            previous = self._input[s]
            hidden = plans if final_relu else plans[:-1]
            for i, plan in enumerate(hidden):
                previous = build_layer(
                    model,
                    plan,
                    previous,
                    self.relu_formulation,
                    lambda base, s=s, i=i: self._name_var(f"{base}[{s},{i}]"),
                )
            last = plans[-1]
            out = self._output[s]
            if last.rows.size:
                value = previous if final_relu else affine_expression(last, previous)
                model.addConstr(out[last.rows] == value, name=self._name_var(f"output[{s}]"))
            fixed = np.setdiff1d(np.arange(self._output_shape), last.rows)
            if fixed.size:
                model.addConstr(
                    out[fixed] == last.constant_values[fixed],
                    name=self._name_var(f"constant_output[{s}]"),
                )

    # -- results --------------------------------------------------------------------------

    def get_error(self, eps: float | None = None) -> np.ndarray:
        """Absolute difference between the solver's outputs and torch's forward pass.

        The forward pass runs in float64 at the solver's input values.

        Parameters
        ----------
        eps : float, optional
            Warn when the largest error exceeds ``eps``.

        Returns
        -------
        numpy.ndarray
            ``(k, n_out)`` absolute errors.

        Raises
        ------
        NoSolutionError
            If the model has no solution.
        """
        if not self._has_solution:
            raise NoSolutionError()
        if self._float64_network is None:
            self._float64_network = Float64Network(self.predictor)
        inputs = np.asarray(self.input_values, dtype=np.float64).reshape(self._input.shape)
        expected = self._float64_network(inputs)
        error = np.abs(expected - np.asarray(self.output_values).reshape(expected.shape))
        if eps is not None and error.max() > eps:
            import warnings

            warnings.warn(f"get_error: largest error {error.max():.3g} exceeds {eps}", stacklevel=2)
        return error

    @property
    def stats(self) -> dict:
        """Machine-readable statistics of the formulation.

        Returns
        -------
        dict
            ``layers``: one dict per layer with ``name``, ``neurons``, the count of each neuron
            category (``constant``, ``inactive``, ``active``, ``unstable``, ``unread``),
            ``removed`` (neurons without a variable), ``binaries``, ``disjunctions`` and
            ``weights`` (nonzero weights embedded), summed over input rows; and totals:
            ``variables``, ``constraints``, ``general_constraints``, ``binaries``,
            ``nonzeros`` (of the added constraints), ``bounds_method``, ``bounds_seconds``
            and ``bounds_stages`` (per layer and bounding stage: unstable neurons left and
            seconds).
        """
        rows = []
        binary = self.relu_formulation in ("bigm", "indicator")
        for i, layer in enumerate(self.layers):
            counts = {c: sum(p[i].count(c) for p in self.plans) for c in CATEGORIES}
            unstable = counts["unstable"]
            rows.append(
                {
                    "name": layer.name,
                    "neurons": layer.n_out * len(self.plans),
                    **counts,
                    "removed": counts["constant"] + counts["inactive"] + counts["unread"],
                    "binaries": unstable if binary else 0,
                    "disjunctions": unstable if layer.relu else 0,
                    "weights": sum(p[i].weight.nnz for p in self.plans),
                }
            )
        return {
            "layers": rows,
            "variables": len(self.vars),
            "constraints": len(self.constrs),
            "general_constraints": len(self.genconstrs),
            "binaries": sum(r["binaries"] for r in rows),
            "disjunctions": sum(r["disjunctions"] for r in rows),
            "nonzeros": self._added_nonzeros,
            "relu_formulation": self.relu_formulation,
            "bounds_method": self.bounds.method if self.bounds else None,
            "bounds_seconds": self.bounds.seconds if self.bounds else 0.0,
            "bounds_stages": list(self.bounds.report) if self.bounds else [],
        }

    def print_stats(self, abbrev: bool = False, file=None) -> None:
        """Print per-layer statistics: neurons, removed, stable, binaries, nonzeros.

        Parameters
        ----------
        abbrev : bool
            Print one summary line (as gurobi-ml does for nested sub-models).
        file : file-like, optional
            Where to print; ``sys.stdout`` by default.
        """
        stats = self.stats
        if abbrev:
            print(
                f"{self._name:13} {str(tuple(self.output.shape)):>14} {stats['variables']:>12} "
                f"{stats['constraints']:>12} {0:>12} {stats['general_constraints']:>12}",
                file=file,
            )
            return
        out = io.StringIO()
        header = (
            f"{'Layer':<40} {'Neurons':>8} {'Removed':>8} {'Active':>8} {'Inactive':>8} "
            f"{'Unstable':>8} {'Binaries':>8} {'Weights':>8}"
        )
        print(
            f"Model for {self._name} ({self.relu_formulation}, bounds: "
            f"{stats['bounds_method']}, {stats['bounds_seconds']:.3f} s)",
            file=out,
        )
        print("-" * len(header), file=out)
        print(header, file=out)
        print("=" * len(header), file=out)
        for row in stats["layers"]:
            print(
                f"{row['name'][:40]:<40} {row['neurons']:>8} {row['removed']:>8} "
                f"{row['active']:>8} {row['inactive']:>8} {row['unstable']:>8} "
                f"{row['binaries']:>8} {row['weights']:>8}",
                file=out,
            )
        print("-" * len(header), file=out)
        print(
            f"{stats['variables']} variables ({stats['binaries']} binary), "
            f"{stats['constraints']} linear constraints, {stats['general_constraints']} general "
            f"constraints, {stats['nonzeros']} nonzeros",
            file=out,
        )
        stages = stats["bounds_stages"]
        if stages and any(layer.relu for layer in self.layers):
            print("Unstable neurons after each bounding stage (seconds):", file=out)
            for i, layer in enumerate(self.layers):
                if not layer.relu:
                    continue
                steps = " -> ".join(
                    f"{row['stage']} skipped"
                    if "skipped" in row
                    else f"{row['stage']} {row['unstable']} ({row['seconds']:.3f})"
                    for row in stages
                    if row["layer"] == i
                )
                print(f"  layer {i}: {steps}", file=out)
            reasons = {row["stage"]: row["skipped"] for row in stages if "skipped" in row}
            for stage, reason in reasons.items():
                print(f"  {stage} skipped: {reason}", file=out)
        print(f"Input has shape {tuple(self.input.shape)}", file=out)
        print(f"Output has shape {tuple(self.output.shape)}", file=out)
        print(out.getvalue(), end="", file=file)


def add_sparse_predictor_constr(
    gp_model: gp.Model,
    network: nn.Module,
    input_vars: Any,
    output_vars: Any = None,
    **options: Any,
) -> SparseSequentialConstr:
    """Embed a torch ``nn.Sequential`` ReLU network in a Gurobi model, sparsity-aware.

    Zero weights create no coefficients; constant, stable-inactive and unread neurons get no
    variable; stable-active neurons are linear; only unstable neurons get a ReLU disjunction,
    with big-M constants from per-neuron pre-activation bounds.

    Parameters
    ----------
    gp_model : gurobipy.Model
        The model to add the network to.
    network : torch.nn.Sequential
        ``Linear`` and ``ReLU`` modules, with ``Flatten``, ``Identity`` and ``Dropout`` as no-ops
        (evaluation mode). Modules pruned with :mod:`torch.nn.utils.prune` are read through
        their masks without being modified.
    input_vars : gurobipy.MVar, list of Var, or pandas object
        ``(n_in,)`` for one sample, or ``(k, n_in)`` for ``k`` independent copies.
    output_vars : gurobipy.MVar or list of Var, optional
        Created (with the computed bounds) when not given.
    **options
        relu_formulation : {"bigm", "max", "indicator"}, default "bigm"
            How unstable ReLU neurons are modelled: big-M with the per-neuron bounds, Gurobi's
            max general constraint (no binaries, fewer linear rows), or indicator constraints.
        bounds : str or NetworkBounds, default "auto"
            A bounding method or precomputed bounds. ``"interval"``: interval arithmetic
            (with the domain's exact first layer); ``"linear"``: back-substitution of linear
            ReLU relaxations (CROWN); ``"lp"`` / ``"milp"``: per-neuron LP / MILP on each
            neuron's cone of influence; ``"auto"``: interval, then linear, then LP and MILP
            for the neurons still unstable, within a time budget (``bound_options``:
            ``time_budget``, ``auto_min_unstable``...).
        domain : Box, LinfBall or L1Ball, optional
            An input domain that holds in the model (added with ``domain.add_to_model``); it
            gives tighter first-layer bounds.
        bound_options : dict, optional
            Options of the bounding method (such as a time budget).
        bound_cache : bool or BoundsCache, default True
            Reuse bounds computed earlier for the same weights, input bounds, domain, method
            and options (the process-wide
            :data:`~gurobi_sparse_surrogate.bounds.cache.BOUNDS_CACHE`, or a cache of your
            own); False computes them afresh. Bounds can also be reused explicitly:
            ``bounds=pc.bounds`` embeds the same network over the same inputs with the
            bounds of an earlier embedding ``pc``.
        check_size : bool, default True
            Raise :class:`ModelTooLargeError` before building when the size-limited licence
            could not solve the resulting model.
        verbose : bool, default False
            Print what the embedding does (bounding stages with a progress bar when they last,
            then sizes; see :mod:`gurobi_sparse_surrogate.verbosity`), as well as gurobi-ml's
            own timing line.
        name : str
            Passed to gurobi-ml's sub-model machinery.

    Returns
    -------
    SparseSequentialConstr
        With ``get_error()``, ``print_stats()``, ``remove()``, ``stats``, ``bounds``,
        ``input``, ``output``, ``input_values``, ``output_values``.

    Raises
    ------
    UnsupportedNetworkError, ShapeMismatchError, NonFiniteWeightError, UnboundedInputError,
    ModelTooLargeError

    Examples
    --------
    >>> import gurobipy as gp, torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
    >>> x = m.addMVar(4, lb=0.0, ub=1.0)
    >>> pc = add_sparse_predictor_constr(m, net, x)
    >>> m.setObjective(pc.output[0, 0], gp.GRB.MAXIMIZE)
    >>> m.optimize()
    >>> bool(pc.get_error().max() < 1e-5)
    True
    """
    return SparseSequentialConstr(gp_model, network, input_vars, output_vars, **options)
