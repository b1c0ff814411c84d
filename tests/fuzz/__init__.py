"""Fuzz harnesses (hypothesis): a package, so its conftest is ``fuzz.conftest`` and never shadows ``tests/conftest.py``."""
