"""``python -m asm ARGS`` = ``asm ARGS``."""

import sys

from asm.cli import main

sys.exit(main())
