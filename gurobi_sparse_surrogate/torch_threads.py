"""Running small torch computations on one thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["single_torch_thread"]


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the caller's thread count.

    The package's torch work (attacks on a few points, bound optimisation, training small
    networks) gains nothing from more threads, and on a busy machine their synchronisation
    costs far more than the arithmetic.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with single_torch_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
