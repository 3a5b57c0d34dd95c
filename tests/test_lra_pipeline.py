"""`python -m pipelines.lra` end to end at smoke scale: one training run per task on tiny data in
the official formats (ListOps and Pathfinder generated), MLflow tracking, the results tables, and
the instructions when Retrieval's files are missing."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys

import pytest
from lra_fixtures import write_aan, write_cifar_batches, write_imdb_jsonl

from lruts.errors import DataError
from lruts.lra.report import update_results
from lruts.lra.runner import run_task

FIXTURES = {"text": write_imdb_jsonl, "image": write_cifar_batches, "retrieval": write_aan}


@pytest.mark.parametrize("task", ["listops", "text", "retrieval", "image", "pathfinder", "pathx"])
def test_smoke_run_trains_and_tests_each_task(task, tmp_path):
    data = tmp_path / "lra"
    data.mkdir()
    if task in FIXTURES:
        FIXTURES[task](data)
    out = tmp_path / "runs"
    r = run_task(task, "smoke", data_dir=data, track=False, out_dir=out, progress=False)
    assert r.epochs_run == 1 and not r.diverged
    assert 0.0 <= r.test_accuracy <= 1.0 and math.isfinite(r.test_loss)
    assert r.n_train > 0 and r.n_test > 0
    saved = json.loads((out / f"{task}-smoke" / "results.json").read_text())
    assert saved["test_accuracy"] == r.test_accuracy
    assert (out / f"{task}-smoke" / "last.pt").is_file()
    if task in ("listops", "pathfinder", "pathx"):
        assert r.source.startswith("generated")  # no official files here: written in their layout, then read


# the paper's Tables 8–9 (lr: ours except sCIFAR's), in Recipe's field order
PAPER_TABLE = {
    "listops": (6, 128, 256, 0.0, 0.99, 2 * math.pi, 32, 0.5, 0.05, 0.0, False, 27, 0.003, "full"),
    "text": (6, 256, 192, 0.5, 0.9, 2 * math.pi, 32, 0.1, 0.05, 0.1, False, 64, 0.004, "full"),
    "retrieval": (6, 128, 256, 0.5, 0.9, 2 * math.pi, 64, 0.5, 0.05, 0.1, False, 44, 0.002, "full"),
    "image": (6, 512, 384, 0.9, 0.999, 2 * math.pi, 50, 0.25, 0.05, 0.1, False, 200, 0.004, "full"),
    "pathfinder": (6, 192, 256, 0.9, 0.999, 2 * math.pi, 64, 0.25, 0.05, 0.0, True, 200, 0.004, "full"),
    "pathx": (6, 128, 256, 0.999, 0.9999, math.pi / 10, 32, 0.25, 0.05, 0.0, True, 50, 0.002, "half"),
}


@pytest.mark.parametrize("task", list(PAPER_TABLE))
def test_recipes_hold_the_papers_table(task):
    from lruts.lra.tasks import TASKS, Recipe, preset

    expected = dict(zip([f.name for f in dataclasses.fields(Recipe)], PAPER_TABLE[task], strict=True))
    assert dataclasses.asdict(TASKS[task].recipe) == expected
    p = preset(task, "paper")
    carried = {**p.model, **p.train}  # every field of the row reaches the network or the trainer
    assert {k: carried[k] for k in expected} == expected


def test_recipe_file_replaces_only_the_fields_it_sets(tmp_path):
    from lruts.lra.tasks import get_task, load_recipe, preset

    path = tmp_path / "recipe.yaml"
    path.write_text("d_model: 256\nlr: 1\nbidirectional: true\n")
    base = get_task("image").recipe
    r = load_recipe(path, base)
    assert (r.d_model, r.lr, r.bidirectional) == (256, 1.0, True) and isinstance(r.lr, float)
    assert dataclasses.replace(r, d_model=base.d_model, lr=base.lr, bidirectional=False) == base
    assert preset("image", "paper", r).model["d_model"] == 256
    assert preset("image", "small", r).model["d_model"] == 64  # the scale still shrinks the recipe


@pytest.mark.parametrize(
    "text, message",
    [
        ("d_modle: 256\n", r"unknown recipe field\(s\) \['d_modle'\]; known: \[.*'d_model'"),
        ("d_model: 25.6\n", "recipe field d_model must be an integer, got 25.6"),
        ("dropout: true\n", "recipe field dropout must be a number, got True"),
        ("- d_model\n", "must hold a mapping of recipe fields, got list"),
    ],
)
def test_recipe_file_with_a_wrong_field_says_which(tmp_path, text, message):
    from lruts.errors import ConfigError
    from lruts.lra.tasks import get_task, load_recipe

    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(path, get_task("image").recipe)


def test_cli_recipe_file_reaches_the_run(tmp_path, capsys):
    from pipelines.lra import main

    data = tmp_path / "lra"
    data.mkdir()
    write_cifar_batches(data)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("r_min: 0.5\nmax_phase: 3.0\n")
    common = ["--task", "image", "--scale", "smoke", "--data-dir", str(data), "--out", str(tmp_path / "runs")]
    common += ["--results-md", str(tmp_path / "results.md"), "--no-track", "--no-progress"]
    assert main([*common, "--recipe", str(recipe)]) == 0
    model = json.loads((tmp_path / "runs" / "image-smoke" / "results.json").read_text())["preset"]["model"]
    assert (model["r_min"], model["max_phase"], model["r_max"]) == (0.5, 3.0, 0.999)
    recipe.write_text("rmin: 0.5\n")
    assert main([*common, "--recipe", str(recipe)]) == 2
    assert "unknown recipe field(s) ['rmin']" in capsys.readouterr().err


def test_missing_retrieval_files_are_named_with_where_to_put_them(tmp_path):
    with pytest.raises(DataError) as e:
        run_task("retrieval", "smoke", data_dir=tmp_path, track=False, out_dir=tmp_path / "runs")
    msg = str(e.value)
    for name in ("tsv_data/new_aan_pairs.train.tsv", "new_aan_pairs.eval.tsv", "new_aan_pairs.test.tsv"):
        assert name in msg
    assert str(tmp_path) in msg


def test_run_is_tracked_in_mlflow(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("LRUTS_MLFLOW_ARTIFACTS", (tmp_path / "artifacts").as_uri())
    data = tmp_path / "lra"
    data.mkdir()
    write_cifar_batches(data)
    r = run_task("image", "smoke", data_dir=data, out_dir=tmp_path / "runs", progress=False, variant="tanh_rnn")
    run = MlflowClient().get_run(r.run_id)
    assert run.data.metrics["test_accuracy"] == pytest.approx(r.test_accuracy)
    assert "val_accuracy" in run.data.metrics
    assert run.data.params["variant"] == "tanh_rnn" and run.data.params["preset.model.d_model"] == "16"
    assert MlflowClient().get_experiment(run.info.experiment_id).name == "lruts-lra"


def test_results_tables_are_rewritten_between_markers(tmp_path):
    runs = tmp_path / "runs"
    for variant, acc in (("lru", 0.5), ("tanh_rnn", 0.25)):
        d = runs / f"image-small-{variant}"
        d.mkdir(parents=True)
        preset = {"model": {"n_layers": 2, "d_model": 64, "d_state": 64, "bidirectional": False}}
        row = dict(
            task="image",
            scale="small",
            variant=variant,
            test_accuracy=acc,
            val_accuracy=acc,
            epochs_run=2,
            minutes=1.0,
            n_train=10,
            n_val=2,
            n_test=3,
            n_parameters=100,
            diverged=False,
            source="fixture",
            finished="2026-01-01 00:00",
            preset=preset,
        )
        (d / "results.json").write_text(json.dumps(row))
    md = tmp_path / "results.md"
    md.write_text("# LRA\n\nintro kept\n\n<!-- lra-results:begin -->\nold\n<!-- lra-results:end -->\n\noutro kept\n")
    update_results(md, runs)
    text = md.read_text()
    assert "intro kept" in text and "outro kept" in text and "old" not in text
    assert "| Image (CIFAR-10) | 89.0 | 50.0 | small |" in text
    assert "| tanh RNN (dense) | 25.0 |" in text and "| + γ normalisation (LRU) | 50.0 |" in text
    assert "| ListOps | 60.2 | not run |" in text


def test_cli_help_does_not_import_torch():
    code = "import sys, pipelines.lra as m; m.parser().format_help(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_official_files_are_preferred_to_generating(tmp_path):
    from lra_fixtures import LISTOPS_ROWS, write_listops

    write_listops(tmp_path / "lra_release")  # the release archive unpacked as is
    r = run_task("listops", "smoke", data_dir=tmp_path, track=False, out_dir=tmp_path / "runs", progress=False)
    assert r.source.startswith("official") and "lra_release" in r.source
    assert r.n_train == len(LISTOPS_ROWS)
