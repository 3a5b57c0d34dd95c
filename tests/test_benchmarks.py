"""The benchmark scripts run outside the suite, so nothing else notices when a name they import from lruts
moves: each must at least import (peers such as neuralforecast are imported inside their functions)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.stem)
def test_a_benchmark_script_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    assert callable(module.main)


def test_fit_time_scores_a_business_day_forecast_on_the_rows_of_its_dates(monkeypatch):
    # a stock's rows skip an exchange holiday that lruts's business-day steps count: its forecast of each step
    # must meet the row of that date, and a row past its last step is not scored
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from fit_time import on_rows

    days = np.array(["2024-07-01", "2024-07-02", "2024-07-03", "2024-07-04", "2024-07-05"], dtype="datetime64[ns]")
    rows = np.delete(np.append(days, np.datetime64("2024-07-08", "ns")), 3)  # no row on July 4th
    forecast = np.arange(5.0)[:, None] * [1, 10]  # (H, 2): a point and a bound per step
    got = on_rows(forecast, days, rows)
    np.testing.assert_array_equal(got[:4], forecast[[0, 1, 2, 4]])
    assert np.isnan(got[4]).all()  # July 8th is past the fifth business day
    np.testing.assert_array_equal(on_rows(forecast, days, days), forecast)  # no gap: unchanged
