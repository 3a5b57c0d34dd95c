"""lruts: time-series forecasting with the Linear Recurrent Unit (Orvieto et al., ICML 2023)."""

from lruts.errors import DataError, LrutsError, ShapeError
from lruts.forecasting.forecaster import LRUForecaster
from lruts.lru import LRU
from lruts.network import DeepLRU, DeepLRUConfig, LRUBlock, LRUClassifier, LRUSequenceModel, masked_mean
from lruts.optim import make_optimizer, warmup_cosine
from lruts.scan import linear_scan

__all__ = [
    "LRU",
    "DataError",
    "DeepLRU",
    "DeepLRUConfig",
    "LRUBlock",
    "LRUClassifier",
    "LRUForecaster",
    "LRUSequenceModel",
    "LrutsError",
    "ShapeError",
    "linear_scan",
    "make_optimizer",
    "masked_mean",
    "warmup_cosine",
]
