"""Data for the paper's experiments, nothing downloaded: bundled and IDX loaders (loaders, idx),
the paper's networks and classifier cache (models), training (training); public via ``datasets``."""
