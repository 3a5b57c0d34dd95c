"""lruts: time-series forecasting with the Linear Recurrent Unit (Orvieto et al., ICML 2023).

The public names load on first use, so `import lruts` (or `import lruts.scan`) costs no more than the
modules it names: the forecaster's data layer, polars and tracking load only when asked for.
"""

import importlib

# public name -> the module that defines it
_EXPORTS = {
    "LRU": "lruts.lru",
    "DataError": "lruts.errors",
    "DeepLRU": "lruts.network",
    "DeepLRUConfig": "lruts.network",
    "LRUBlock": "lruts.network",
    "LRUClassifier": "lruts.network",
    "LRUForecaster": "lruts.forecasting.forecaster",
    "LRUSequenceModel": "lruts.network",
    "LrutsError": "lruts.errors",
    "ShapeError": "lruts.errors",
    "linear_scan": "lruts.scan",
    "make_optimizer": "lruts.optim",
    "masked_mean": "lruts.network",
    "warmup_cosine": "lruts.optim",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lruts' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
