"""retain_freed_memory: freed heap memory stays in the process for reuse, however large the block."""

import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, ctypes.util
from lruts.memory import retain_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
assert retain_freed_memory()
size = 3 * 2**30  # above 2**31: the largest trim threshold an int can set
block = libc.malloc(size)  # untouched, so no page is faulted in
assert block, "malloc failed"
libc.free(block)
print(libc.mallinfo2().keepcost)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator setting")
def test_a_freed_block_above_2_gb_is_kept_not_trimmed():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 3 * 2**30  # the freed top of the heap, still the process's
