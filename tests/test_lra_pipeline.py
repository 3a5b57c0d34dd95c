"""`python -m pipelines.lra` end to end at smoke scale: one training run per task on tiny data in
the official formats (ListOps and Pathfinder generated), MLflow tracking, the results tables, and
the instructions when Retrieval's files are missing."""

from __future__ import annotations

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


def test_path_tasks_use_the_papers_recipe(tmp_path):
    from lruts.lra.tasks import preset

    px = preset("pathx", "paper")
    assert px.model["bidirectional"] and px.model["glu"] == "half"
    assert px.model["max_phase"] == pytest.approx(math.pi / 10)
    assert (px.model["r_min"], px.model["r_max"]) == (0.999, 0.9999)
    assert preset("pathfinder", "paper").model["bidirectional"]
    assert not preset("image", "paper").model["bidirectional"]
    assert preset("image", "paper").model["d_model"] == 512 and preset("image", "paper").train["batch_size"] == 50


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
