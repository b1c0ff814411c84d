"""The fuzz invariant and its runner, shared by the harnesses in this folder.

Invariant: a parser of untrusted input returns a valid result or raises one of asm's typed
errors (:class:`asm.errors.AsmError`); any other exception, or a call that takes longer than
:data:`HANG_SECONDS`, is a finding.

``make test`` runs each harness for :data:`SMOKE_EXAMPLES` examples (a bounded smoke);
``make fuzz`` sets ``ASM_FUZZ_SECONDS`` and each harness runs that long, in rounds of
:data:`LONG_ROUND` examples with fresh random seeds. Executions per harness are counted
and printed at the end of the session (``EXECUTIONS``).
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings

from asm.errors import AsmError

__all__ = ["fuzz", "guarded", "EXECUTIONS", "Hang"]

SMOKE_EXAMPLES = int(os.environ.get("ASM_FUZZ_EXAMPLES") or 500)
LONG_ROUND = 500
HANG_SECONDS = 20.0
#: Calls of each harness's target in this session.
EXECUTIONS: Counter[str] = Counter()


class Hang(Exception):
    """One call ran past :data:`HANG_SECONDS`."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang(f"a single call took more than {HANG_SECONDS:g} s")


def guarded(name: str, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``target(*args, **kwargs)`` under the invariant: its result, or None when it raised
    an :class:`~asm.errors.AsmError`; anything else propagates (a finding)."""
    EXECUTIONS[name] += 1
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return target(*args, **kwargs)
    except AsmError as e:
        assert str(e) and len(str(e)) < 1000, f"{type(e).__name__} with an empty or huge message"
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz(*strategies: Any, examples: int | None = None) -> Callable[[Callable[..., None]], Callable[[], None]]:
    """A pytest test from a harness body and the strategies of its arguments (see the module
    docstring for how long it runs)."""

    def wrap(body: Callable[..., None]) -> Callable[[], None]:
        common = dict(deadline=None, database=None, derandomize=False, print_blob=True,
                      suppress_health_check=list(HealthCheck))
        smoke = settings(max_examples=examples or SMOKE_EXAMPLES, **common)(given(*strategies)(body))
        long_round = settings(max_examples=LONG_ROUND, **common)(given(*strategies)(body))

        def test() -> None:
            seconds = float(os.environ.get("ASM_FUZZ_SECONDS") or 0)
            if seconds <= 0:
                smoke()
                return
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                long_round()

        test.__name__, test.__doc__ = body.__name__, body.__doc__
        return test

    return wrap
