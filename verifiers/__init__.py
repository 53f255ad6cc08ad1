"""Verifiers judge each sample; built-ins and third-party ones load through one entry-point group."""

from verifiers.base import Candidate, Verdict, Verifier
from verifiers.registry import load_verifier, validate_options, verifier_names

__all__ = ["Candidate", "Verdict", "Verifier", "load_verifier", "validate_options", "verifier_names"]
