"""``python -m gurobi_sparse_surrogate``: the ``gss-verify`` command."""

import sys

from .applications.cli import main

if __name__ == "__main__":
    sys.exit(main())
