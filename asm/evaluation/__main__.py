"""``python -m asm.evaluation [options]`` = ``asm eval [options]``."""

import sys

from asm.cli import main

sys.exit(main(["eval", *sys.argv[1:]]))
