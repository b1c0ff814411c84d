"""``python -m asm.training [options]`` = ``asm train [options]`` (what ``torchrun -m asm.training`` runs)."""

import sys

from asm.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
