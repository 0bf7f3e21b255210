"""The predictor constraint object: a sparse, bound-tightened embedding of a torch network."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping
from typing import Any

import gurobipy as gp
import numpy as np
from gurobi_ml.exceptions import NoSolutionError
from gurobi_ml.modeling.base_predictor_constr import AbstractPredictorConstr
from torch import nn

from ..bounds.cache import cached_compute_bounds
from ..bounds.problem import NetworkBounds, post_activation
from ..exceptions import (
    InvalidOptionError,
    ShapeMismatchError,
    StaleEmbeddingError,
    UnboundedInputError,
)
from ..license import check_model_size
from ..network.extraction import Float64Network
from ..network.memo import extract_layers_cached
from ..validation import check_keys
from ..verbosity import verbose_logging
from .options import GUROBI_ML_KEYWORDS, EmbeddingOptions, split_options
from .planning import (
    CATEGORIES,
    LayerPlan,
    LayerSize,
    affine_expression,
    build_layer,
    layer_size,
    plan_network,
)
from .tolerances import keep_exact
from .variables import input_matrix, output_matrix

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

    The options it was built with are :attr:`options`; :meth:`rebuild` embeds the same network
    again (or another one) with the same options, or with some of them changed.

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
        options: EmbeddingOptions | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._options, passthrough = split_options(options, kwargs)
        self.predictor = predictor
        self.layers = extract_layers_cached(predictor)
        self.relu_formulation = self._options.relu_formulation
        self._input_shape = self.layers[0].n_in
        self._output_shape = self.layers[-1].n_out
        self._float64_network = None
        self.bounds: NetworkBounds | None = None
        self.plans: list[list[LayerPlan]] = []
        self._added_nonzeros = 0
        self._default_name = "sparse_sequential"
        self._model = gp_model
        self._passthrough = passthrough
        self._replaced_by: SparseSequentialConstr | None = None
        # Variables this embedding creates outside gurobi-ml's recording window (output
        # variables when none are given, fixed variables for constant pandas inputs): they are
        # its own, and remove() deletes them besides what gurobi-ml recorded.
        self._owned: list[gp.Var] = []
        inputs, columns, index, fixed = input_matrix(
            gp_model, self._flatten_image_input(input_vars), self._input_shape, self._image_note()
        )
        self._owned += fixed
        k, n_out = inputs.shape[0], self._output_shape
        if output_vars is None:
            output_vars = gp_model.addMVar((k, n_out), lb=-gp.GRB.INFINITY, name="out")
            gp_model.update()
            self._owned += output_vars.reshape(-1).tolist()
            self._outputs_created = True
        else:
            output_vars = output_matrix(output_vars, k, self._output_shape)
            self._outputs_created = False
        started = time.perf_counter()
        try:
            with verbose_logging(bool(passthrough.get("verbose", False))):
                super().__init__(gp_model, inputs, output_vars, **passthrough)
                self._log_build(time.perf_counter() - started)
        except BaseException:
            if self._owned:
                gp_model.remove(self._owned)
                gp_model.update()
            raise
        self._input_columns, self._input_index = columns, index

    # -- options and rebuilding ---------------------------------------------------------------

    @property
    def options(self) -> EmbeddingOptions:
        """The options this embedding was built with (immutable)."""
        return self._options

    @property
    def outputs_created(self) -> bool:
        """Whether this embedding owns its output variables (``remove()`` deletes them)."""
        return self._outputs_created

    @property
    def replaced_by(self) -> SparseSequentialConstr | None:
        """The embedding that now takes this one's place after it was removed, if any.

        Rebuilt more than once (for example by a swap's fallback, then on leaving the block),
        this is the latest one.
        """
        latest = self._replaced_by
        while latest is not None and latest._replaced_by is not None:
            latest = latest._replaced_by
        return latest

    def rebuild(
        self,
        gp_model: gp.Model | None = None,
        predictor: nn.Module | None = None,
        *,
        input_vars: Any = None,
        output_vars: Any = None,
        options: EmbeddingOptions | Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> SparseSequentialConstr:
        """Embed a network again with this embedding's options (some of them changed).

        The rebuilt embedding is a new object; this one is not modified. In the same model,
        it reads the same input variables and defines the same output variables unless
        others are given. When this embedding was removed with ``remove(keep_outputs=True)``
        (or plainly removed), the rebuilt one in the same model on the same variables becomes
        its :attr:`replaced_by`; if this one owned its output variables, the rebuilt one takes
        them over (its ``remove()`` deletes them).

        Parameters
        ----------
        gp_model : gurobipy.Model, optional
            Where to embed; this embedding's model by default. Another model needs
            ``input_vars`` of its own.
        predictor : torch.nn.Module, optional
            The network; this embedding's by default (for example a pruned version of it).
        input_vars, output_vars : optional
            As in :func:`add_sparse_predictor_constr`; this embedding's by default (in the
            same model).
        options : EmbeddingOptions or dict, optional
            Options to start from instead of this embedding's (unlisted keys of a dict take
            their defaults).
        **changes
            Embedding options to change (see :class:`EmbeddingOptions`) and gurobi-ml's
            ``name``/``verbose``; the others stay as they are.

        Returns
        -------
        SparseSequentialConstr

        Examples
        --------
        >>> import gurobipy as gp, torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
        >>> m = gp.Model(env=gp.Env(params={"OutputFlag": 0}))
        >>> pc = add_sparse_predictor_constr(m, net, m.addMVar(3, lb=0, ub=1), bounds="interval")
        >>> pc.remove(keep_outputs=True)
        >>> again = pc.rebuild(relu_formulation="max")
        >>> again.options.bounds, again.options.relu_formulation, pc.replaced_by is again
        ('interval', 'max', True)
        >>> again.outputs_created  # it took the output variables over from pc
        True
        """
        model = self._model if gp_model is None else gp_model
        same_model = model is self._model
        if not same_model and input_vars is None:
            raise InvalidOptionError(
                "rebuild() in another model needs input_vars of that model (this embedding's "
                "variables belong to its own model)"
            )
        given_outputs = output_vars is not None
        inputs = self._input if input_vars is None else input_vars
        outputs = output_vars if given_outputs or not same_model else self._output
        check_keys(changes, (*EmbeddingOptions.names(), *GUROBI_ML_KEYWORDS), "embedding option")
        passthrough = {
            **self._passthrough,
            **{k: changes.pop(k) for k in GUROBI_ML_KEYWORDS if k in changes},
        }
        base, _ = split_options(self._options if options is None else options, {})
        rebuilt = type(self)(
            model,
            self.predictor if predictor is None else predictor,
            inputs,
            outputs,
            options=base.replace(**changes),
            **passthrough,
        )
        replaces = same_model and input_vars is None and not given_outputs
        if replaces and self.gp_model is None:  # this one was removed: the new one replaces it
            if self._outputs_created:  # it kept its outputs for the new one to own
                rebuilt._owned += self._output.reshape(-1).tolist()
                rebuilt._outputs_created = True
                self._owned = []
                self._outputs_created = False
            self._replaced_by = rebuilt
        return rebuilt

    def remove(self, *, keep_outputs: bool = False) -> None:
        """Remove from the model everything this embedding added.

        Parameters
        ----------
        keep_outputs : bool
            Keep the output variables even when this embedding created them (for example to
            :meth:`rebuild` it on the same variables).

        Raises
        ------
        StaleEmbeddingError
            When this embedding was removed and replaced (see :attr:`replaced_by`).
        """
        if self._replaced_by is not None:
            raise StaleEmbeddingError(
                "this embedding was removed and rebuilt (for example by SurrogateSwap); "
                "remove its replacement instead (this object's replaced_by, or the swap's "
                "dense_constr)"
            )
        if keep_outputs:  # not deleted with the rest; still owned, for rebuild() to pass on
            outputs = set(self._output.reshape(-1).tolist())
            self._owned = [v for v in self._owned if v not in outputs]
        super().remove()  # what vars lists (the recorded range and the owned variables)
        self._owned = []

    @property
    def vars(self) -> list[gp.Var]:
        """The variables this embedding added (outputs it created included)."""
        return [*self._owned, *super().vars] if self.gp_model is not None else []

    # -- building -------------------------------------------------------------------------

    def _build_submodel(self, gp_model, *args, **kwargs):
        """Build inside gurobi-ml's recording window (inputs and outputs are already checked)."""
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
        if self._options.check_size:
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
        if self._outputs_created:
            lo, hi = post_activation(
                self.bounds.lower[-1], self.bounds.upper[-1], self.layers[-1].relu
            )
            self._output.LB = np.where(np.isfinite(lo), lo, -gp.GRB.INFINITY)
            self._output.UB = np.where(np.isfinite(hi), hi, gp.GRB.INFINITY)
        label = f"embedding of {type(self.predictor).__name__} ({self.layers[0].n_in} inputs)"
        self.tolerance_changes = keep_exact(gp_model, self._largest_big_m(), label)
        self._mip_model(**kwargs)
        gp_model.update()
        self._added_nonzeros = gp_model.NumNZs - nonzeros_before
        return self

    def _largest_big_m(self) -> float:
        """The largest finite pre-activation bound (absolute) of an unstable neuron."""
        largest = 0.0
        for plans in self.plans:
            for plan in plans:
                u = plan.unstable
                if u.any():
                    values = np.abs(np.concatenate([plan.lower[u], plan.upper[u]]))
                    values = values[np.isfinite(values)]
                    if values.size:
                        largest = max(largest, float(values.max()))
        return largest

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

    def _image_note(self) -> str:
        image = self.layers[0].input_shape
        return f" (an image of shape {tuple(image)}, flattened)" if len(image) > 1 else ""

    def _compute_bounds(self, gp_model: gp.Model) -> NetworkBounds:
        k = self._input.shape[0]
        method, domain = self._options.bounds, self._options.domain
        if isinstance(method, NetworkBounds):
            method.check_shapes(self.layers, k)
            self._check_bounds_cover_inputs(gp_model, method, domain)
            return method
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
        return cached_compute_bounds(
            self.layers,
            lower,
            upper,
            method,
            domain,
            bool(getattr(self, "verbose", False)),
            cache=self._options.bound_cache,
            options=self._options.bound_options,
        )

    def _check_bounds_cover_inputs(self, gp_model, bounds: NetworkBounds, domain) -> None:
        """Refuse bounds computed over a smaller input set than this model's inputs range over
        (they would cut off reachable values: a silent wrong model)."""
        if bounds.input_lower is None or bounds.input_upper is None:
            return  # bounds given by the caller as arrays: the caller vouches for them
        k = self._input.shape[0]
        gp_model.update()
        lower = np.asarray(self._input.LB, dtype=np.float64).reshape(k, -1)
        upper = np.asarray(self._input.UB, dtype=np.float64).reshape(k, -1)
        lower[lower <= -gp.GRB.INFINITY] = -np.inf
        upper[upper >= gp.GRB.INFINITY] = np.inf
        if domain is not None and getattr(domain, "n", None) == lower.shape[1]:
            lower = np.maximum(lower, domain.lower)
            upper = np.minimum(upper, domain.upper)
        tol = 1e-9 * (1.0 + np.abs(bounds.input_lower))
        below = lower < bounds.input_lower - tol
        tol = 1e-9 * (1.0 + np.abs(bounds.input_upper))
        above = upper > bounds.input_upper + tol
        if below.shape == above.shape == bounds.input_lower.shape and (below | above).any():
            bad = np.flatnonzero((below | above).any(axis=0))[:10].tolist()
            raise InvalidOptionError(
                f"bounds= were computed for inputs in a smaller box than the input variables "
                f"range over (inputs {bad}): they would cut off reachable values; compute them "
                "for these inputs, or pass the domain= they were computed with"
            )
        # Bounds over a domain smaller than its box (an L1 ball) hold only where the model
        # constrains its inputs to that domain: the caller declares it with domain=.
        if bounds.domain is not None and not (domain is not None and domain.within(bounds.domain)):
            raise InvalidOptionError(
                f"bounds= were computed over {bounds.domain!r}, which is smaller than its "
                "bounding box; they hold only for inputs in that domain: constrain the inputs to "
                "it (domain.add_to_model) and pass domain= that domain (or one inside it), or "
                "compute bounds for these inputs"
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

    @property
    def _build_last_layer(self) -> bool:
        """Whether the last layer gets variables of its own (ReLU or max pooling) rather
        than linking the output variables to its affine map directly."""
        return self.layers[-1].relu or self.layers[-1].is_maxpool

    def _planned_size(self) -> LayerSize:
        total = LayerSize()
        for plans in self.plans:
            hidden = plans if self._build_last_layer else plans[:-1]
            for plan in hidden:
                total += layer_size(plan, self.relu_formulation)
            total += LayerSize(constraints=self._output_shape)  # output rows
        if self._outputs_created:
            total += LayerSize(variables=self._input.shape[0] * self._output_shape)
        return total

    def _mip_model(self, **kwargs):
        model = self.gp_model
        final_relu = self._build_last_layer
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
            ``layers``: one dict per layer with ``name``, ``kind`` (``"affine"`` or
            ``"maxpool"``), ``channels`` (``"C_in->C_out"`` on images), ``kernel``,
            ``neurons``, the count of each neuron
            category (``constant``, ``inactive``, ``active``, ``unstable``, ``unread``),
            ``removed`` (neurons without a variable), ``binaries``, ``disjunctions`` and
            ``weights`` (nonzero weights embedded), summed over input rows; and totals:
            ``variables``, ``constraints``, ``general_constraints``, ``binaries``,
            ``nonzeros`` (of the added constraints), ``bounds_method``, ``bounds_seconds``
            ``tolerances`` (Gurobi tolerances this embedding tightened on the model to stay
            exact with its big-M constants: ``{name: (old, new)}``, see
            :mod:`~gurobi_sparse_surrogate.formulation.tolerances`) and ``bounds_stages``
            (per layer and bounding stage: unstable neurons left and
            seconds).
        """
        rows = []
        for i, layer in enumerate(self.layers):
            counts = {c: sum(p[i].count(c) for p in self.plans) for c in CATEGORIES}
            unstable = counts["unstable"]
            built = self._build_last_layer or i < len(self.layers) - 1
            rows.append(
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "channels": layer.channels,
                    "kernel": "x".join(map(str, layer.kernel)) if layer.kernel else "",
                    "neurons": layer.n_out * len(self.plans),
                    **counts,
                    "removed": counts["constant"] + counts["inactive"] + counts["unread"],
                    "binaries": sum(
                        layer_size(p[i], self.relu_formulation).binaries for p in self.plans
                    )
                    if built
                    else 0,
                    "disjunctions": unstable if (layer.relu or layer.is_maxpool) else 0,
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
            "tolerances": dict(getattr(self, "tolerance_changes", {})),
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
        images = any(row["channels"] or row["kernel"] for row in stats["layers"])
        extra = f" {'Channels':>9} {'Kernel':>6}" if images else ""
        header = (
            f"{'Layer':<40}{extra} {'Neurons':>8} {'Removed':>8} {'Active':>8} {'Inactive':>8} "
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
            columns = f" {row['channels']:>9} {row['kernel']:>6}" if images else ""
            print(
                f"{row['name'][:40]:<40}{columns} {row['neurons']:>8} {row['removed']:>8} "
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
            # why a stage ran on no layer (the reason on a hidden layer says most)
            ran = {row["stage"] for row in stages if "skipped" not in row}
            reasons: dict[str, str] = {}
            for row in sorted(stages, key=lambda row: row["layer"] == 0):
                if "skipped" in row and row["stage"] not in ran:
                    reasons.setdefault(row["stage"], row["skipped"])
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
    *,
    options: EmbeddingOptions | Mapping[str, Any] | None = None,
    **kwargs: Any,
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
        Created (with the computed bounds) when not given; the embedding then owns them
        (``remove()`` deletes them).
    options : EmbeddingOptions or dict, optional
        All embedding options at once, for example another embedding's ``pc.options``;
        keyword arguments override them.
    **kwargs
        The embedding options (see :class:`EmbeddingOptions`, where their defaults are
        declared), plus gurobi-ml's ``name`` and ``verbose``. A misspelled key raises
        :class:`InvalidOptionError` naming it and the valid ones.

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
        bound_options : dict or BoundOptions, optional
            Options of the bounding method (such as ``time_budget``), the fields of
            :class:`~gurobi_sparse_surrogate.bounds.BoundOptions`; an unknown key or a bad
            value raises :class:`~gurobi_sparse_surrogate.exceptions.InvalidOptionError`.
        check_size : bool, default True
            Raise :class:`ModelTooLargeError` before building when the size-limited licence
            could not solve the resulting model.
        bound_cache : bool or BoundsCache, default True
            Reuse bounds computed earlier for the same weights, input bounds, domain, method
            and options (the process-wide
            :data:`~gurobi_sparse_surrogate.bounds.cache.BOUNDS_CACHE`, or a cache of your
            own); False computes them afresh. Bounds can also be reused explicitly:
            ``bounds=pc.bounds`` embeds the same network over the same inputs with the
            bounds of an earlier embedding ``pc``.
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
    ModelTooLargeError, InvalidOptionError

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
    return SparseSequentialConstr(
        gp_model, network, input_vars, output_vars, options=options, **kwargs
    )
