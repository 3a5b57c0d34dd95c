"""Long Range Arena (Tay et al. 2021) for the LRU: readers of the official release layout, seeded
generators for the synthetic tasks (ListOps, Pathfinder, Path-X) that write that same layout, the
paper's per-task recipes as presets, the classification and two-tower retrieval models, the paper's
ablation variants, and the runner behind `python -m pipelines.lra`.

Imports point one way: sources → (listops, pathfinder, text, retrieval, image) → sequences →
tasks → (ablation → models) → runner → report.
"""
