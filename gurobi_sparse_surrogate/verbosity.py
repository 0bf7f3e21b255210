"""What the package says while it works: the ``gurobi_sparse_surrogate`` logger and progress bars.

Every module logs through ``logging.getLogger(__name__)``, a child of the package logger
``gurobi_sparse_surrogate``, which has a :class:`logging.NullHandler` and is therefore silent
unless the application configures logging (as libraries should be). Lines at ``INFO`` level say
what each bounding stage did (method, layer, time, neurons made stable, stages skipped and
why), what each embedding added (variables, binaries, nonzeros), each phase of a surrogate swap
and each fallback.

To see them, either configure logging yourself::

    import logging
    logging.basicConfig()
    logging.getLogger("gurobi_sparse_surrogate").setLevel(logging.INFO)

or pass ``verbose=True`` where the API has it (:func:`~gurobi_sparse_surrogate.find_adversarial`,
:func:`~gurobi_sparse_surrogate.maximize_output`, ``add_sparse_predictor_constr(...,
verbose=True)``), which attaches a handler for the duration of the call with
:func:`verbose_logging` and shows a progress bar on bounding passes that last more than about
two seconds.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

PACKAGE_LOGGER = "gurobi_sparse_surrogate"

#: Seconds a bounding pass runs before its progress bar appears (verbose only).
PROGRESS_DELAY = 2.0
#: Seconds between two redraws of a progress bar.
PROGRESS_INTERVAL = 0.1

_verbose: contextvars.ContextVar[bool] = contextvars.ContextVar("gss_verbose", default=False)


class _VerboseHandler(logging.StreamHandler):
    """The handler :func:`verbose_logging` attaches (recognised so it is attached only once)."""


@contextlib.contextmanager
def verbose_logging(verbose: bool = True, stream: Any = None) -> Iterator[None]:
    """Print the package's ``INFO`` lines while the block runs, when ``verbose``.

    A no-op when ``verbose`` is False, and when a verbose block is already active (nested
    calls print each line once). The logger's level and handlers are restored afterwards.

    Parameters
    ----------
    verbose : bool
        Whether to attach the handler.
    stream : file-like, optional
        Where to write; ``sys.stderr`` by default.

    Examples
    --------
    >>> import io, logging
    >>> out = io.StringIO()
    >>> with verbose_logging(stream=out):
    ...     logging.getLogger("gurobi_sparse_surrogate.demo").info("hello")
    >>> out.getvalue()
    'gurobi_sparse_surrogate: hello\\n'
    """
    if not verbose or _verbose.get():
        yield
        return
    logger = logging.getLogger(PACKAGE_LOGGER)
    handler = _VerboseHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("gurobi_sparse_surrogate: %(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    token = _verbose.set(True)
    try:
        yield
    finally:
        _verbose.reset(token)
        logger.removeHandler(handler)
        logger.setLevel(level)


def logs_when_verbose(function: F) -> F:
    """Run ``function`` inside :func:`verbose_logging` when it is called with ``verbose=True``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with verbose_logging(bool(kwargs.get("verbose", False))):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def is_verbose() -> bool:
    """Whether a :func:`verbose_logging` block is active."""
    return _verbose.get()


_bar: contextvars.ContextVar[Any] = contextvars.ContextVar("gss_bar", default=None)


def progress_bar(total: int, description: str) -> Any:
    """A tqdm bar over ``total`` steps, shown only inside a verbose block and only once the
    work has lasted :data:`PROGRESS_DELAY` seconds (short passes print nothing).

    While the bar is open, :func:`progress_note` updates its text from deeper down (a stage's
    solves), so that a long step shows that it is alive.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        desc=description,
        disable=not is_verbose(),
        delay=PROGRESS_DELAY,
        mininterval=PROGRESS_INTERVAL,
        leave=False,
        file=sys.stderr,
    )
    _bar.set(bar)
    close = bar.close

    def close_and_forget() -> None:
        if _bar.get() is bar:
            _bar.set(None)
        close()

    bar.close = close_and_forget
    return bar


def progress_note(text: str) -> None:
    """Show ``text`` beside the open progress bar, if any (cheap when there is none)."""
    bar = _bar.get()
    if bar is None or bar.disable:
        return
    bar.set_postfix_str(text, refresh=False)
    bar.update(0)


__all__ = [
    "PACKAGE_LOGGER",
    "PROGRESS_DELAY",
    "is_verbose",
    "logs_when_verbose",
    "progress_bar",
    "progress_note",
    "verbose_logging",
]
