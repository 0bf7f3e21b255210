"""Exceptions raised by gurobi-sparse-surrogate.

Every error a user can trigger with bad input derives from :class:`SparseSurrogateError`
and from the built-in exception that describes it best (``ValueError`` or ``TypeError``),
so that ``except ValueError`` keeps working for callers that do not know this package.
"""

from __future__ import annotations


class SparseSurrogateError(Exception):
    """Base class of the errors raised by this package."""


class UnsupportedNetworkError(SparseSurrogateError, TypeError):
    """The network contains a layer or a structure that cannot be embedded."""


class ShapeMismatchError(SparseSurrogateError, ValueError):
    """Variables and network (or bounds) do not have conforming shapes."""


class NonFiniteWeightError(SparseSurrogateError, ValueError):
    """A weight or bias of the network is NaN or infinite."""


class UnboundedInputError(SparseSurrogateError, ValueError):
    """The formulation needs finite bounds that the input variables do not have."""


class ModelTooLargeError(SparseSurrogateError, ValueError):
    """The model would exceed the limits of the Gurobi licence in use."""


class DatasetFormatError(SparseSurrogateError, ValueError):
    """A data or network file does not have the expected format."""


class BatchNormTrainingError(UnsupportedNetworkError):
    """A batch normalization layer is in training mode (it uses each batch's statistics)."""


class VnnlibError(SparseSurrogateError, ValueError):
    """A VNN-LIB property file is malformed or does not fit the network.

    Attributes
    ----------
    line : int or None
        The line of the file where the problem is, when known.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class NestedSwapError(SparseSurrogateError, RuntimeError):
    """A :class:`~gurobi_sparse_surrogate.SurrogateSwap` was started on an embedding that
    another swap has already swapped out."""


class StaleEmbeddingError(SparseSurrogateError, RuntimeError):
    """An embedding was taken out of its model and replaced; use the replacement."""


class InvalidOptionError(SparseSurrogateError, ValueError, TypeError):
    """An option key that does not exist, or an option value that is not allowed.

    Also a ``TypeError`` (what Python raises for an unexpected keyword argument) and a
    ``ValueError`` (what it raises for a bad value), so that either ``except`` catches it.
    """
