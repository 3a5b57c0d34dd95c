"""One observation of an anchor (or un-normalised) forecaster stream, compiled: the dashboard's hot path.

The same arithmetic as `LRUForecastNet.step` in torch ops (tested equal for every streamable option):

    u = x − last observation (anchor) | x            the network input, (B, C)
    recent ← recent[1:] + [u]                        the last P inputs: the patch this observation completes
    h, states ← deep LRU stack step(recent)          lruts.step_kernel.stack_step
    values ← values[1:] + [x]                        the kept observations (the skip path's lookback)
    loc = x | mean of the last P values | 0          what the forecast is measured from
    out = head(h) (+ skip(values − loc) on the point forecast; quantiles as offsets from it) + loc

In torch this is ~40 small ops around the stack's ~15 per layer, each a few µs of Python and dispatch
(one series of the default forecaster: ≈ 0.27 ms per observation); as one numba call it is ≈ 0.03 ms.
`LRUForecastNet.step` calls it where the compiled step applies (`network.compiled_weights`).

Shapes: x (B, C); recent (B', P, c) with B' = B·C, c = 1 when channel-independent, else B' = B, c = C;
values (B, K, C); states (n_layers, B', N) complex; head_w (H·c·n_out, d), head_b; skip_w (H, L) and
skip_b (H,) — (0, 0) and (0,) without the skip path. anchor: 0 none, 1 last value, 2 mean of the last P.
Returns the forecast (B, H, C, n_out) and the new recent, values and states.
"""

from __future__ import annotations

from lruts import step_kernel

__all__ = ["forecast_step"]

if step_kernel.available():
    import numba as _nb
    import numpy as _np

    @_nb.njit(cache=True, fastmath=step_kernel.FASTMATH, nogil=True)
    def forecast_step(
        x, recent, values, states, stack, head_w, head_b, skip_w, skip_b, anchor, channel_independent, horizon
    ):  # pragma: no cover - compiled; tested against the torch step
        batch, n_ch = x.shape
        n_seq, p, c = recent.shape
        kept = values.shape[1]
        n_out = head_w.shape[0] // (horizon * c)
        new_recent = _np.empty_like(recent)
        new_recent[:, : p - 1] = recent[:, 1:]
        new_values = _np.empty_like(values)
        new_values[:, : kept - 1] = values[:, 1:]
        new_values[:, kept - 1] = x
        loc = _np.zeros((batch, n_ch), x.dtype)
        for b in range(batch):
            for ch in range(n_ch):
                u = x[b, ch] - values[b, kept - 1, ch] if anchor else x[b, ch]
                if channel_independent:
                    new_recent[b * n_ch + ch, p - 1, 0] = u
                else:
                    new_recent[b, p - 1, ch] = u
                if anchor == 1:
                    loc[b, ch] = x[b, ch]
                elif anchor == 2:
                    for t in range(kept - p, kept):
                        loc[b, ch] += new_values[b, t, ch]
                    loc[b, ch] /= p
        h, new_states = step_kernel.stack_step(new_recent.reshape(n_seq, p * c), *stack, states)
        d = h.shape[1]
        raw = _np.empty(head_w.shape[0], x.dtype)
        out = _np.empty((batch, horizon, n_ch, n_out), x.dtype)
        lb = skip_w.shape[1]
        for r in range(n_seq):
            for k in range(head_w.shape[0]):
                acc = head_b[k]
                for i in range(d):
                    acc += head_w[k, i] * h[r, i]
                raw[k] = acc
            b = r // n_ch if channel_independent else r
            lo, hi = (r % n_ch, r % n_ch + 1) if channel_independent else (0, n_ch)  # the series in row r
            for ch in range(lo, hi):
                for hh in range(horizon):
                    # the head's outputs are (C, H, n_out) per sequence when channel-independent (c = 1),
                    # (H, C, n_out) when mixing
                    o = hh * n_out if channel_independent else (hh * n_ch + ch) * n_out
                    point = raw[o]
                    if skip_w.shape[0]:
                        acc = skip_b[hh]
                        for t in range(lb):
                            acc += skip_w[hh, t] * (new_values[b, kept - lb + t, ch] - loc[b, ch])
                        point += acc
                    out[b, hh, ch, 0] = point + loc[b, ch]
                    for q in range(1, n_out):
                        out[b, hh, ch, q] = (point + raw[o + q]) + loc[b, ch]
        return out, new_recent, new_values, new_states
