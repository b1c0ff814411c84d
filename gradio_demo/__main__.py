"""``python -m gradio_demo`` is ``python -m gradio_demo.app``."""

import sys

from gradio_demo.app import main

sys.exit(main())
