"""MLflow "models from code" entry: the logged model is this file plus the lruts package, not a
pickled object, so loading it never unpickles anything."""

import mlflow

from lruts.forecasting.pyfunc import ForecasterModel

mlflow.models.set_model(ForecasterModel())
