"""Latency of one streaming step of a deep LRU stack, and proof it does not grow with history.

    python benchmarks/stream.py [--layers 6] [--d-model 128] [--d-state 256] [--batches 1 321]
                                [--backends torch numba]

For each batch size and step backend (`lruts.network.compiled_weights`: "numba" is the compiled stack
step, "torch" the same step in torch ops; the library picks numba while batch · (4NH + 2H²) ≤
COMPILED_MACS, torch above): the
stack consumes a long history one step at a time; the median step latency is reported in windows
after 0, 1k and 10k steps already consumed (best of a few medians: on a shared VM the same run varies
by ±50%). The recurrent mode carries only a (batch, N) state per layer, so the latency must stay flat.
Target (issue 2): ≤ 0.5 ms per step at batch 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from lruts import DeepLRUConfig, LRUSequenceModel
from lruts.network import COMPILED_MACS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--d-state", type=int, default=256)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 321])
    ap.add_argument(
        "--backends",
        nargs="+",
        choices=["torch", "numba"],
        help="default: both where the library would run numba, torch alone above (numba there is slow)",
    )
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
        f"{COMPILED_MACS // model.body.step_macs(1)}, torch above"
    )
    print("| batch | backend | " + " | ".join(f"after {c} steps" for c in args.checkpoints) + " |")
    print("|---|---|" + "---|" * len(args.checkpoints))

    def backends(batch: int) -> list[str]:
        if args.backends:
            return args.backends
        return ["torch", "numba"] if model.body.step_macs(batch) <= COMPILED_MACS else ["torch"]

    for batch, backend in [(b, k) for b in args.batches for k in backends(b)]:
        os.environ["LRUTS_STEP_BACKEND"] = backend
        states = model.initial_state(batch)
        consumed, row = 0, []
        with torch.inference_mode():
            for checkpoint in args.checkpoints:
                while consumed < checkpoint:  # advance the history untimed
                    _, states = model.step(torch.randn(batch, 1), states)
                    consumed += 1
                medians = []
                for _ in range(args.repeats):
                    times = []
                    for _ in range(args.window):
                        u = torch.randn(batch, 1)
                        t0 = time.perf_counter()
                        _, states = model.step(u, states)
                        times.append(time.perf_counter() - t0)
                    consumed += args.window
                    medians.append(1e3 * statistics.median(times))
                row.append(min(medians))
        print(f"| {batch} | {backend} | " + " | ".join(f"{t:.3f}" for t in row) + " |", flush=True)


if __name__ == "__main__":
    main()
