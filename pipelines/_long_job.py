"""How the long-running entry points (train, tune, lra) start, and how they end when a job fails or is
interrupted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERRUPTED = 130  # the shell's code for Ctrl-C
FAILED = 2


def parse_dataset_job(ap: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The arguments of a job that needs --dataset or --config (train, tune); logging set up for it."""
    import logging

    args = ap.parse_args(argv)
    if not args.dataset and not args.config:
        ap.error("give --dataset NAME (or --config FILE)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    return args


RESUME_HINT = "the checkpoint of the last finished epoch is intact; continue with --resume"


def run_long_job(job: Callable[[], T], interrupted: str = RESUME_HINT) -> tuple[T | None, int]:
    """Run `job`; (its result, 0), or (None, exit code) after one line on stderr: a LrutsError's message
    (what is wrong and how to fix it), or, on Ctrl-C, `interrupted` (what survived, how to go on).

    A long training job keeps freed memory for reuse (lruts/memory.py): without it every activation tensor
    is page-faulted in again at each step on CPU. The library itself never changes the allocator."""
    from lruts.errors import LrutsError
    from lruts.memory import retain_freed_memory

    retain_freed_memory()

    try:
        return job(), 0
    except LrutsError as e:
        print(f"error: {e}", file=sys.stderr)
        return None, FAILED
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return None, INTERRUPTED
