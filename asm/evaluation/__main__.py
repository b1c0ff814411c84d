"""``python -m asm.evaluation [options]`` = ``asm eval [options]``."""

import sys

from asm.evaluation.run import main

sys.exit(main())
