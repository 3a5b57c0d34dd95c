"""How the long-running entry points (train, lra) end when a job fails or is interrupted."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERRUPTED = 130  # the shell's code for Ctrl-C
FAILED = 2


def run_long_job(job: Callable[[], T]) -> tuple[T | None, int]:
    """Run `job`; (its result, 0), or (None, exit code) after one line on stderr: a LrutsError's message
    (what is wrong and how to fix it), or, on Ctrl-C, that the last checkpoint is intact."""
    from lruts.errors import LrutsError

    try:
        return job(), 0
    except LrutsError as e:
        print(f"error: {e}", file=sys.stderr)
        return None, FAILED
    except KeyboardInterrupt:
        print(
            "\ninterrupted: the checkpoint of the last finished epoch is intact; continue with --resume",
            file=sys.stderr,
        )
        return None, INTERRUPTED
