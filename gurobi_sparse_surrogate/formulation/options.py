"""The options of an embedding, declared once and validated when they are given."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..bounds.cache import BoundsCache
from ..bounds.options import BoundOptions
from ..bounds.problem import METHODS, NetworkBounds
from ..exceptions import InvalidOptionError
from ..validation import check_keys
from .planning import RELU_FORMULATIONS

#: Keyword arguments that gurobi-ml's sub-model machinery reads (passed through untouched).
GUROBI_ML_KEYWORDS = ("name", "verbose", "no_record", "no_debug")


@dataclass(frozen=True)
class EmbeddingOptions:
    """How :func:`~gurobi_sparse_surrogate.add_sparse_predictor_constr` embeds a network.

    Every default is declared here and only here. The object is immutable; derive a changed
    copy with :meth:`replace`. Invalid keys or values raise :class:`InvalidOptionError`
    naming them and what is allowed.

    Parameters
    ----------
    relu_formulation : {"bigm", "max", "indicator"}
        How unstable ReLU neurons are modelled.
    bounds : str or NetworkBounds
        A bounding method (a key of ``BOUND_METHODS``) or precomputed bounds.
    domain : Domain, optional
        An input domain that holds in the model; gives tighter first-layer bounds.
    check_size : bool
        Raise :class:`~gurobi_sparse_surrogate.ModelTooLargeError` before building a model
        the size-limited licence could not solve.
    bound_options : BoundOptions or mapping, optional
        Options of the bounding method (such as ``time_budget``), validated into a
        :class:`~gurobi_sparse_surrogate.bounds.BoundOptions` (an unknown key or a bad value
        raises here, naming it).
    bound_cache : bool or BoundsCache
        Reuse bounds computed earlier for the same weights, input bounds, domain, method and
        options (the process-wide cache, or a cache of your own); False computes them afresh.

    Examples
    --------
    >>> options = EmbeddingOptions(relu_formulation="max")
    >>> options.replace(bounds="interval").bounds
    'interval'
    >>> EmbeddingOptions.from_mapping({"relu_formulaton": "max"})
    Traceback (most recent call last):
    ...
    gurobi_sparse_surrogate.exceptions.InvalidOptionError: unknown embedding option \
'relu_formulaton'; did you mean 'relu_formulation'? Valid embedding options: bound_cache, \
bound_options, bounds, check_size, domain, relu_formulation.
    """

    relu_formulation: str = "bigm"
    bounds: str | NetworkBounds = "auto"
    domain: Any = None
    check_size: bool = True
    bound_options: BoundOptions | Mapping[str, Any] | None = None
    bound_cache: bool | BoundsCache = True

    def __post_init__(self) -> None:
        if not isinstance(self.relu_formulation, str) or (
            self.relu_formulation not in RELU_FORMULATIONS
        ):
            raise InvalidOptionError(
                f"unknown relu_formulation {self.relu_formulation!r}; choose one of "
                f"{RELU_FORMULATIONS}"
            )
        if isinstance(self.bounds, str):
            if self.bounds not in METHODS:
                raise InvalidOptionError(
                    f"unknown bounding method {self.bounds!r}; choose one of {sorted(METHODS)}"
                )
        elif not isinstance(self.bounds, NetworkBounds):
            raise InvalidOptionError(
                "bounds must be the name of a bounding method or a NetworkBounds object, got "
                f"{type(self.bounds).__name__}"
            )
        if self.domain is not None:
            from ..domains import Domain

            if not isinstance(self.domain, Domain):
                raise InvalidOptionError(
                    "domain must be a Box, LinfBall or L1Ball (a Domain), got "
                    f"{type(self.domain).__name__}"
                )
        if not isinstance(self.check_size, bool):
            raise InvalidOptionError(f"check_size must be True or False, got {self.check_size!r}")
        if self.bound_options is not None:
            if not isinstance(self.bound_options, (Mapping, BoundOptions)):
                raise InvalidOptionError(
                    "bound_options must be a mapping of bounding options or a BoundOptions, "
                    f"got {type(self.bound_options).__name__}"
                )
            object.__setattr__(self, "bound_options", BoundOptions.from_value(self.bound_options))
        if not isinstance(self.bound_cache, (bool, BoundsCache)):
            raise InvalidOptionError(
                f"bound_cache must be True, False or a BoundsCache, got {self.bound_cache!r}"
            )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> EmbeddingOptions:
        """Options from keyword arguments; an unknown key raises, naming it."""
        check_keys(options, cls.names(), "embedding option")
        return cls(**options)

    def replace(self, **changes: Any) -> EmbeddingOptions:
        """A copy with ``changes`` applied (validated like the constructor's arguments)."""
        check_keys(changes, self.names(), "embedding option")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as keyword arguments of ``add_sparse_predictor_constr``."""
        return {name: getattr(self, name) for name in self.names()}


def split_options(
    options: EmbeddingOptions | Mapping[str, Any] | None, keywords: Mapping[str, Any]
) -> tuple[EmbeddingOptions, dict[str, Any]]:
    """Embedding options and gurobi-ml's own keywords from what a caller passed.

    ``keywords`` override ``options``; keys that are neither an embedding option nor one of
    :data:`GUROBI_ML_KEYWORDS` raise :class:`InvalidOptionError` naming them.
    """
    if options is None:
        base = EmbeddingOptions()
    elif isinstance(options, EmbeddingOptions):
        base = options
    elif isinstance(options, Mapping):
        base = EmbeddingOptions.from_mapping(options)
    else:
        raise InvalidOptionError(
            f"options must be an EmbeddingOptions or a mapping, got {type(options).__name__}"
        )
    check_keys(keywords, (*EmbeddingOptions.names(), *GUROBI_ML_KEYWORDS), "embedding option")
    changes = {k: v for k, v in keywords.items() if k in EmbeddingOptions.names()}
    passthrough = {k: v for k, v in keywords.items() if k in GUROBI_ML_KEYWORDS}
    return (base.replace(**changes) if changes else base), passthrough


__all__ = ["GUROBI_ML_KEYWORDS", "EmbeddingOptions", "split_options"]
