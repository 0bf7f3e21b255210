"""Guards against embedding a different function from the one torch computes.

Extraction reads a module's parameters and assumes the module computes what its torch class
computes. That assumption fails silently for a subclass that overrides ``forward``, a module
with a forward hook of its own, complex-valued parameters (whose imaginary parts a float64
copy drops) or a container whose ``forward`` is not ``nn.Sequential``'s. :func:`check_modules`
refuses those before extraction, naming the module; :func:`check_layers_match` compares the
extracted layers with torch's forward pass on a few random inputs afterwards, as a final
guard for whatever else could differ.

Two cases are embedded as torch computes them instead of refused: a module used more than
once in the same ``Sequential`` is extracted at each use, and the old-style
``torch.nn.utils.weight_norm`` has its weight recomputed from ``weight_g`` and ``weight_v``
(:func:`weight_norm_parameter`) rather than read from the ``.weight`` attribute, which is
stale after an optimiser step until the next forward pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from ..exceptions import UnsupportedNetworkError

__all__ = ["check_layers_match", "check_modules", "weight_norm_parameter"]


def _known_hook(hook: object) -> bool:
    """Hooks whose effect extraction reproduces: pruning masks and old-style weight norm."""
    from torch.nn.utils.weight_norm import WeightNorm

    return isinstance(hook, (prune.BasePruningMethod, WeightNorm))


def weight_norm_parameter(module: nn.Module, name: str) -> torch.Tensor | None:
    """The weight an old-style ``torch.nn.utils.weight_norm`` hook computes, or None.

    Parameters
    ----------
    module : torch.nn.Module
    name : str
        The parameter name (``"weight"``).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     layer = torch.nn.utils.weight_norm(torch.nn.Linear(2, 2))
    >>> with torch.no_grad():
    ...     _ = layer.weight_g.mul_(3.0)  # an optimiser step: .weight is stale until a forward
    >>> bool(torch.allclose(weight_norm_parameter(layer, "weight"), 3 * layer.weight))
    True
    """
    from torch.nn.utils.weight_norm import WeightNorm

    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == name:
            return hook.compute_weight(module).detach()
    return None


def check_modules(network: nn.Module, supported: Sequence[type[nn.Module]]) -> None:
    """Refuse modules whose forward pass extraction would not reproduce.

    Parameters
    ----------
    network : torch.nn.Sequential
    supported : sequence of type
        The module classes extraction knows (their own ``forward`` is what it reproduces).

    Raises
    ------
    UnsupportedNetworkError
        Naming the module: a subclass of a supported class (or of ``nn.Sequential``) that
        overrides ``forward``, a forward hook or pre-hook other than pruning's and weight
        norm's, or complex-valued parameters or buffers.
    """
    for name, module in _named_modules(network):
        label = f"module {name or '<network>'!r} of type {type(module).__name__}"
        if isinstance(module, nn.Sequential):
            base: type[nn.Module] | None = nn.Sequential
        else:
            base = next((cls for cls in supported if isinstance(module, cls)), None)
        if base is not None and type(module).forward is not base.forward:
            raise UnsupportedNetworkError(
                f"{label} overrides forward() of {base.__name__}: the package embeds what "
                f"{base.__name__} computes, which may not be what this module computes; use "
                f"a plain {base.__name__}"
            )
        hooks = [
            *module._forward_hooks.values(),
            *module._forward_pre_hooks.values(),
            *getattr(module, "_forward_hooks_with_kwargs", {}).values(),
        ]
        unknown = [h for h in hooks if not _known_hook(h)]
        if unknown:
            raise UnsupportedNetworkError(
                f"{label} has {len(unknown)} forward hook(s) ({_names(unknown)}) that may change "
                "its output; the package cannot embed them. Remove the hooks"
            )
        tensors = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
        complex_ = [n for n, t in tensors if t is not None and t.is_complex()]
        if complex_:
            raise UnsupportedNetworkError(
                f"{label} has complex-valued {', '.join(complex_)}; only real-valued networks "
                "can be embedded"
            )


def _named_modules(network: nn.Module) -> Iterable[tuple[str, nn.Module]]:
    """Every module with its dotted name, a module used twice yielded at each use."""
    yield "", network
    stack = [("", network)]
    while stack:
        prefix, parent = stack.pop()
        for child_name, child in parent._modules.items():
            if child is None:
                continue
            name = f"{prefix}.{child_name}" if prefix else child_name
            yield name, child
            stack.append((name, child))


def _names(hooks: list[object]) -> str:
    return ", ".join(getattr(h, "__qualname__", type(h).__name__) for h in hooks)


def check_layers_match(
    network: nn.Module,
    layers: Sequence,
    n_inputs: int | None,
    n_points: int = 4,
    rtol: float = 1e-6,
) -> None:
    """Compare the extracted layers with torch's forward pass on a few random inputs.

    Parameters
    ----------
    network : torch.nn.Module
        The network the layers were extracted from (not modified: a float64 copy is run).
    layers : list of Layer
    n_inputs : int or None
        Flat input size; nothing is checked when it is unknown.
    n_points : int
        Random inputs (seeded, standard normal) to compare on.
    rtol : float
        Largest difference allowed, relative to ``1 + |torch output|``.

    Raises
    ------
    UnsupportedNetworkError
        When they differ: the network computes something extraction does not reproduce.
    """
    from .extraction import Float64Network, layers_forward

    if n_inputs is None or not layers or layers[0].n_in != n_inputs:
        return
    inputs = np.random.default_rng(0).standard_normal((n_points, n_inputs))
    expected = Float64Network(network)(inputs).reshape(n_points, -1)
    values = layers_forward(list(layers), inputs)[-1]
    if layers[-1].relu:
        values = np.maximum(values, 0.0)
    if values.shape != expected.shape:
        raise UnsupportedNetworkError(
            f"the extracted layers give {values.shape[1]} outputs where torch's forward pass "
            f"gives {expected.shape[1]}; the network computes something the package cannot "
            "embed"
        )
    error = np.abs(values - expected) / (1.0 + np.abs(expected))
    if error.max() > rtol:
        raise UnsupportedNetworkError(
            f"the extracted layers differ from torch's forward pass by up to "
            f"{np.abs(values - expected).max():.3g} at random inputs: the network computes "
            "something the package does not reproduce (a module with a changed forward, a "
            "hook, or an unsupported parametrisation); nothing was embedded"
        )
