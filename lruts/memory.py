"""Process-level memory setting for long-sequence training on CPU.

glibc serves every allocation above a few MB with a fresh mmap and returns it on free, so each new
activation tensor is page-faulted in again, 4 KB at a time. For the LRU scan's (batch, L, N) outputs
that can cost more than the scan itself (benchmarks/scan.py; docs/experiments.md, "Scan kernel").
`retain_freed_memory()` makes glibc keep freed memory in its heap for reuse, the behaviour PyTorch CPU
users usually get by preloading jemalloc or tcmalloc. The price: the process's resident memory stays
at its peak instead of shrinking after a spike. The pipelines' long jobs and the benchmarks call it;
the library never does on its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_enabled = False


def retain_freed_memory() -> bool:
    """Keep freed heap memory for reuse (glibc only). Returns True if the setting is now active."""
    global _enabled
    if _enabled:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    # mallopt returns 1 on success; no mmap for large blocks, and never trim the heap top. The trim
    # threshold is -1 (glibc: "disables trimming completely"), not the largest int: with 2**31 - 1 a
    # step that freed two 1 GB tensors (batch 32, L = 16384, N = 256) gave them back and faulted them
    # in again on the next step (benchmarks/scan.py: fwd+bwd 282-392 ms, 137-198 ms without the trim).
    _enabled = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
    return _enabled
