"""The paper's applications: gradient attacks, adversarial search and robustness proofs
(:func:`find_adversarial`) and function maximization (:func:`maximize_output`)."""

from .adversarial import AdversarialResult, find_adversarial
from .maximization import MaximizationResult, maximize_output

__all__ = ["AdversarialResult", "MaximizationResult", "find_adversarial", "maximize_output"]
