"""``python -m asm.training [options]`` = ``asm train [options]`` (what ``torchrun -m asm.training`` runs)."""

import sys

from asm.training.command import main

sys.exit(main())
