"""Networks as the package sees them: torch (and ONNX) modules to sparse layers, pruning,
:class:`SparseSequential`, and saving and loading networks."""

from .extraction import Float64Network, Layer, extract_layers, layers_forward, network_forward
from .pruning import PruningReport, SparseSequential, prune_network, pruning_report
from .serialization import load_network, save_network

__all__ = [
    "Float64Network",
    "Layer",
    "PruningReport",
    "SparseSequential",
    "extract_layers",
    "layers_forward",
    "load_network",
    "network_forward",
    "prune_network",
    "pruning_report",
    "save_network",
]
