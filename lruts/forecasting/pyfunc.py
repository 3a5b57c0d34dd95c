"""The forecaster as an MLflow pyfunc model, so `mlflow.pyfunc.load_model(uri).predict(df)` and
`mlflow models serve -m uri` work without any lruts code on the other side (the package is shipped
in the model's code path).

predict(df):
- empty df → the forecast after the history stored with the model;
- rows that continue the stored history (first timestamp one step after it) → advanced through the
  recurrent mode, O(1) per row, then forecast; the stored state is not changed between requests;
- a long-fitted forecaster: long rows of any of its series (a skipped step or an empty target streams in
  as missing); a series' rows after its last target give the future covariates of the horizon to come;
- any other rows → taken as a whole new history (recomputed in parallel mode), then forecast.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import pandas as pd

PIP_REQUIREMENTS = ["torch>=2.2", "numba>=0.59", "numpy", "pandas", "polars", "pyarrow", "pyyaml", "tqdm"]


class ForecasterModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from lruts.forecasting.forecaster import LRUForecaster

        self.forecaster = LRUForecaster.load(context.artifacts["forecaster"], device="cpu")

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from lruts.forecasting.forecaster import LRUForecaster

        fc = LRUForecaster.load_from(self.forecaster)  # its own stream state: the served model stays unchanged
        fc.frame_kind = "pandas"
        if model_input is None or len(model_input) == 0:
            return fc.predict()
        if fc.panel is not None:  # long rows (id, time, target, covariates) of any of the panel's series
            from lruts.forecasting.panel_front import split_future

            rows, future = split_future(model_input, fc.panel)
            future = future if len(future) else None
            return fc.update(rows, future=future) if len(rows) else fc.predict(future)
        from lruts.data.timestamps import with_dated_times

        model_input = with_dated_times(model_input, fc.time_col, fc.time_of_day, fc.day_periods)
        first = pd.to_datetime(model_input[fc.time_col]).to_numpy(dtype="datetime64[ns]").min()
        if first > fc.last_time:  # new rows (a skipped step or a missing value streams in as missing)
            return fc.update(model_input)
        return fc.set_history(model_input)


def _input_example(forecaster) -> pd.DataFrame:
    """The input columns, no rows (rows are optional): a wide forecaster's time + series; a long-fitted one's
    id, time, target and covariates."""
    if forecaster.panel is None:
        example = forecaster.predict().head(0)
        return example[[forecaster.time_col, *forecaster.columns]].astype(dict.fromkeys(forecaster.columns, "float64"))
    front = forecaster.panel
    values = [front.target_col, *front.future_names, *front.past_names]
    ids = pd.Series(dtype="int64" if front.integer_ids else str)
    return pd.DataFrame(
        {front.id_col: ids, front.time_col: pd.Series(dtype="datetime64[ns]")}
        | {c: pd.Series(dtype="float64") for c in values}
    )


def log_forecaster(run, forecaster, *, name: str = "model", registered_model: str | None = None):
    """Log `forecaster` as a pyfunc model in the active run (never raising: see tracking.Run).

    The model is logged from code (lruts/forecasting/mlflow_model.py + the lruts package), with the
    forecaster's weights as an artifact, so nothing is pickled."""
    import tempfile

    from mlflow.models import infer_signature

    example = _input_example(forecaster)
    signature = infer_signature(example, forecaster.predict())
    with tempfile.TemporaryDirectory() as tmp:
        path = forecaster.save(Path(tmp) / "forecaster.lruts")
        return run.call(
            "log_model",
            mlflow.pyfunc.log_model,
            name=name,
            python_model=str(Path(__file__).with_name("mlflow_model.py")),
            artifacts={"forecaster": str(path)},
            code_paths=[str(Path(__file__).resolve().parent.parent)],  # the lruts package
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=registered_model,
            signature=signature,
        )
