"""Latency of one streaming step of a deep LRU stack, and proof it does not grow with history.

    python benchmarks/stream.py [--layers 6] [--d-model 128] [--d-state 256] [--batches 1 321]

For each batch size, two ways to run the same step: "torch", the plain step (`DeepLRU.step`), and
"fast", the library's fast path (`lruts.fast.StackStep`: one compiled call while
batch · (4NH + 2H²) ≤ COMPILED_MACS, the torch step above). The stack consumes a long history one step
at a time; the median step latency is reported in windows after 0, 1k and 10k steps already consumed
(best of a few medians: on a shared VM the same run varies by ±50%). The recurrent mode carries only a
(batch, N) state per layer, so the latency must stay flat. Target: ≤ 0.25 ms per 6-layer step at batch 1.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lruts import DeepLRUConfig, LRUSequenceModel
from lruts.fast import COMPILED_MACS, StackStep, step_macs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--d-state", type=int, default=256)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 321])
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[0, 1000, 10000])
    ap.add_argument("--window", type=int, default=500, help="steps timed at each checkpoint")
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed windows per checkpoint; the best median is reported (shared VMs are noisy)",
    )
    args = ap.parse_args()
    cfg = DeepLRUConfig(d_input=1, d_model=args.d_model, d_state=args.d_state, n_layers=args.layers)
    model = LRUSequenceModel(cfg, d_output=1).eval()
    print(
        f"{args.layers} layers, H={args.d_model}, N={args.d_state}, torch={torch.__version__}, "
        f"threads={torch.get_num_threads()}; ms per step: best of {args.repeats} medians over "
        f"{args.window} steps each; the library runs numba up to batch "
        f"{COMPILED_MACS // step_macs(model.body, 1)}, torch above"
    )
    print("| batch | backend | " + " | ".join(f"after {c} steps" for c in args.checkpoints) + " |")
    print("|---|---|" + "---|" * len(args.checkpoints))

    ways = {"torch": model.body.step, "fast": StackStep(model.body)}
    for batch, way in [(b, k) for b in args.batches for k in ways]:
        step = ways[way]
        states = model.initial_state(batch)
        consumed, row = 0, []
        with torch.inference_mode():
            for checkpoint in args.checkpoints:
                while consumed < checkpoint:  # advance the history untimed
                    _, states = step(torch.randn(batch, 1), states)
                    consumed += 1
                medians = []
                for _ in range(args.repeats):
                    times = []
                    for _ in range(args.window):
                        u = torch.randn(batch, 1)
                        t0 = time.perf_counter()
                        h, states = step(u, states)
                        model.decoder(h)
                        times.append(time.perf_counter() - t0)
                    consumed += args.window
                    medians.append(1e3 * statistics.median(times))
                row.append(min(medians))
        print(f"| {batch} | {way} | " + " | ".join(f"{t:.3f}" for t in row) + " |", flush=True)


if __name__ == "__main__":
    main()
