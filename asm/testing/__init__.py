"""Tools for testing asm and programs built on it: :mod:`asm.testing.forge` (damaged and
forged image files), :mod:`asm.testing.fuzz` (fuzz harnesses for every parser of untrusted
input)."""
