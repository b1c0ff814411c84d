"""Write the golden answers that tests/test_golden.py compares with.

Rerun it (``python tests/golden/make_golden.py`` from the repository root) when the model,
the search or a default changes on purpose, and commit the new JSON with that change: the
diff of ``tests/golden/*.json`` is then the change in behaviour, for review.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

#: name -> ``asm crop`` arguments (run from the repository root). min_scale and faces are
#: given, not left to their defaults, so a change of default shows up elsewhere.
CASES = {
    "dogs-window": ["crop", "examples/dogs-window.jpg", "--json", "--aspect", "16:9", "--aspect", "1:1",
                    "--aspect", "free", "--top-k", "2", "--min-scale", "0.6", "--faces", "off"],
}


def answer(argv: list[str]) -> dict:
    """``asm ARGV``'s one JSON line, run from the repository root."""
    from asm.cli import main

    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            status = main(argv)
    finally:
        os.chdir(cwd)
    if status != 0:
        raise RuntimeError(f"asm {' '.join(argv)} exited {status}")
    (line,) = out.getvalue().splitlines()
    return json.loads(line)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    for name, argv in CASES.items():
        path = HERE / f"{name}.json"
        path.write_text(json.dumps({"argv": argv, "answer": answer(argv)}, indent=1) + "\n")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
