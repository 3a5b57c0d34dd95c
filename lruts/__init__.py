"""lruts: time-series forecasting with the Linear Recurrent Unit (Orvieto et al., ICML 2023).

The public names load on first use, so `import lruts` (or `import lruts.scan`) costs no more than the
modules it names: the forecaster's data layer, polars and tracking load only when asked for.
"""

from lruts.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
