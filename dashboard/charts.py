"""Plotly figures: the forecast with its interval against history and actuals (with a panel series'
covariates below it), and the backtest.

Each forecast trace carries meta="forecast" (the interval bounds meta="interval") so a browser test
can find it in the rendered chart's data.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

HISTORY, ACTUAL, FORECAST, BAND = "#7f7f7f", "#111111", "#e4572e", "rgba(228, 87, 46, 0.18)"
COVARIATE = "#3b75af"


def forecast_figure(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    actuals: pd.DataFrame,
    series: list[str],
    *,
    time_col: str,
    quantiles: list[float],
) -> go.Figure:
    """One panel per series: history, actuals inside the horizon, forecast, and the interval between
    the lowest and highest quantile when the model has two or more."""
    fig = make_subplots(rows=len(series), cols=1, shared_xaxes=True, subplot_titles=series, vertical_spacing=0.06)
    for i, name in enumerate(series, start=1):
        first = i == 1
        fig.add_trace(_line(history, time_col, name, "history", HISTORY, first), row=i, col=1)
        if len(quantiles) >= 2:
            lo, hi = f"{name}_q{quantiles[0]:g}", f"{name}_q{quantiles[-1]:g}"
            band = f"interval {quantiles[0]:g}–{quantiles[-1]:g}"
            fig.add_trace(
                go.Scatter(x=forecast[time_col], y=forecast[hi], mode="lines", line={"width": 0}, meta="interval",
                           name=band, legendgroup="interval", showlegend=False, hoverinfo="skip"),
                row=i, col=1,
            )  # fmt: skip
            fig.add_trace(
                go.Scatter(x=forecast[time_col], y=forecast[lo], mode="lines", line={"width": 0}, meta="interval",
                           fill="tonexty", fillcolor=BAND, name=band, legendgroup="interval", showlegend=first),
                row=i, col=1,
            )  # fmt: skip
        if len(actuals):
            fig.add_trace(_line(actuals, time_col, name, "actual", ACTUAL, first, dash="dot"), row=i, col=1)
        fig.add_trace(_line(forecast, time_col, name, "forecast", FORECAST, first, width=2.5), row=i, col=1)
    fig.update_layout(
        height=120 + 260 * len(series),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        hovermode="x unified",
        uirevision="keep",  # keep the user's zoom when the stream redraws
    )
    return fig


def _line(df, time_col, column, role, color, legend, *, dash=None, width=1.5) -> go.Scatter:
    return go.Scatter(
        x=df[time_col],
        y=df[column],
        mode="lines",
        name=role,
        meta=role,
        legendgroup=role,
        showlegend=legend,
        line={"color": color, "dash": dash, "width": width},
    )


def backtest_figure(backtest: pd.DataFrame) -> go.Figure:
    """MSE and MAE (scaled values) of the test windows at each rolling origin."""
    fig = go.Figure()
    for metric, color in (("mse", FORECAST), ("mae", HISTORY)):
        fig.add_trace(
            go.Scatter(x=backtest["origin time"], y=backtest[metric], mode="lines+markers", name=metric.upper(),
                       line={"color": color}),
        )  # fmt: skip
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="forecast origin",
        yaxis_title="error (scaled values)",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return fig


def panel_figure(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    actuals: pd.DataFrame,
    covariates: pd.DataFrame,
    *,
    title: str,
    time_col: str,
    target_col: str,
    quantiles: list[float],
) -> go.Figure:
    """One series of a panel: its history, actuals inside the horizon, forecast and interval on top, and
    below it one panel per covariate (covariates: time_col + one column each, NaN where unknown), all on
    one time axis. Covariate traces carry meta="covariate"."""
    names = [c for c in covariates.columns if c != time_col]
    rows = 1 + len(names)
    heights = [2.0] + [1.0] * len(names)
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, row_heights=heights, vertical_spacing=0.05,
                        subplot_titles=[title, *names])  # fmt: skip
    fig.add_trace(_line(history, time_col, target_col, "history", HISTORY, True), row=1, col=1)
    if len(quantiles) >= 2 and len(forecast):
        lo, hi = f"forecast_q{quantiles[0]:g}", f"forecast_q{quantiles[-1]:g}"
        band = f"interval {quantiles[0]:g}–{quantiles[-1]:g}"
        fig.add_trace(go.Scatter(x=forecast[time_col], y=forecast[hi], mode="lines", line={"width": 0},
                                 meta="interval", name=band, legendgroup="interval", showlegend=False,
                                 hoverinfo="skip"), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(x=forecast[time_col], y=forecast[lo], mode="lines", line={"width": 0},
                                 meta="interval", fill="tonexty", fillcolor=BAND, name=band, legendgroup="interval"),
                      row=1, col=1)  # fmt: skip
    if len(actuals):
        fig.add_trace(_line(actuals, time_col, target_col, "actual", ACTUAL, True, dash="dot"), row=1, col=1)
    if len(forecast):
        fig.add_trace(_line(forecast, time_col, "forecast", "forecast", FORECAST, True, width=2.5), row=1, col=1)
    for i, name in enumerate(names, start=2):
        trace = _line(covariates, time_col, name, "covariate", COVARIATE, i == 2)
        trace.update(name="covariates", connectgaps=False)
        fig.add_trace(trace, row=i, col=1)
    if len(forecast):  # where the forecast starts: the covariates right of it are the known future ones
        fig.add_vline(x=forecast[time_col].iloc[0], line={"color": FORECAST, "width": 1, "dash": "dot"})
    fig.update_layout(
        height=140 + 300 + 150 * len(names),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        hovermode="x unified",
        uirevision="keep",
    )
    return fig
