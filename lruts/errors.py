"""The project's exception types. A user mistake raises one of these with a message that says what
was wrong and how to fix it; they subclass ValueError so generic handlers still catch them."""


class LrutsError(Exception):
    """Base class of every error lruts raises on purpose."""


class ShapeError(LrutsError, ValueError):
    """A tensor or table does not have the shape (rank, width, columns) that was expected."""


class DataError(LrutsError, ValueError):
    """Input data is unusable as given: missing file, NaN/inf, bad timestamps, empty series, …"""


class ConfigError(LrutsError, ValueError):
    """A configuration file or setting is unusable: missing file, not YAML, unknown or mistyped field."""
