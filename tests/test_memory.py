"""retain_freed_memory: freed heap memory stays in the process for reuse, however large the block, and only
after a caller asks: importing the library leaves glibc's defaults alone."""

import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, ctypes.util

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
{setup}
size = 3 * 2**30  # above 2**31: the largest trim threshold an int can set
block = libc.malloc(size)  # untouched, so no page is faulted in
assert block, "malloc failed"
libc.free(block)
print(libc.mallinfo2().keepcost)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator setting")
@pytest.mark.parametrize(
    ("setup", "kept"),
    [
        ("from lruts.memory import retain_freed_memory\nassert retain_freed_memory()", True),
        ("import lruts, lruts.memory, lruts.training, lruts.forecasting.forecaster", False),
        (  # training through the library does not change the process's allocator either
            "import numpy as np, pandas as pd\nfrom lruts import LRUForecaster\n"
            "from lruts.training import TrainConfig\n"
            "df = pd.DataFrame({'date': pd.date_range('2020', periods=80, freq='h'), 'y': np.sin(np.arange(80.0))})\n"
            "LRUForecaster(16, 4, d_model=8, d_state=8, train=TrainConfig(epochs=1, progress=False)).fit(df)",
            False,
        ),
    ],
)
def test_a_freed_block_above_2_gb_is_kept_only_once_asked_for(setup, kept):
    probe = PROBE.replace("{setup}", setup)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    # kept: the freed top of the heap is still the process's; glibc's default gives the mmapped block back
    assert (int(out.stdout) >= 3 * 2**30) == kept
