"""The shared trainer: it learns, early-stops, checkpoints atomically and resumes exactly."""

import pytest
import torch
from forecast_fixtures import TINY_MODEL, synthetic_frame, tiny_train

from lruts.data import WindowBatch, WindowDataset
from lruts.forecasting.losses import forecast_loss
from lruts.forecasting.net import ForecastNetConfig, LRUForecastNet
from lruts.io import load_torch
from lruts.training import PermutationSampler, TrainConfig, Trainer, make_loader


def datasets(lookback=48, horizon=12):
    values = synthetic_frame(900).drop(columns="date").to_numpy("float32")
    values = (values - values[:600].mean(0)) / values[:600].std(0)
    data = torch.from_numpy(values)
    return (
        WindowDataset(data, 0, 600, lookback, horizon, split="train"),
        WindowDataset(data, 600 - lookback, 900, lookback, horizon, split="val"),
    )


def new_net(lookback=48, horizon=12):
    torch.manual_seed(0)
    return LRUForecastNet(ForecastNetConfig(lookback, horizon, 3).with_options(TINY_MODEL))


def loss_fn(model, batch):
    return forecast_loss(model(batch.x), batch.y, []), len(batch)


def test_training_lowers_the_loss():
    train, val = datasets()
    net = new_net()
    trainer = Trainer(net, loss_fn, tiny_train(epochs=3, max_steps_per_epoch=None))
    before = trainer.evaluate_loss(val)
    result = trainer.fit(train, val)
    assert result.best_val_loss < 0.5 * before
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, ema):
    train, val = datasets()
    cfg = tiny_train(epochs=4, ema=ema)
    uninterrupted = Trainer(new_net(), loss_fn, cfg, checkpoint_dir=tmp_path / "a")
    full = uninterrupted.fit(train, val)

    calls = {"n": 0}

    def interrupting_loss(model, batch):  # Ctrl-C in the middle of epoch 3
        calls["n"] += model.training
        if calls["n"] > 2 * 15 + 7:
            raise KeyboardInterrupt
        return loss_fn(model, batch)

    with pytest.raises(KeyboardInterrupt):
        Trainer(new_net(), interrupting_loss, cfg, checkpoint_dir=tmp_path / "b").fit(train, val)
    ckpt = load_torch(tmp_path / "b" / "last.pt")  # valid, loadable without unpickling
    assert ckpt["state"]["epoch"] == 2
    assert not list((tmp_path / "b").glob("*.tmp"))  # no half-written file left behind

    resumed_trainer = Trainer(new_net(), loss_fn, cfg, checkpoint_dir=tmp_path / "b")
    resumed = resumed_trainer.fit(train, val, resume=True)

    def losses(history):
        return [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in history]

    assert losses(resumed.history) == losses(full.history)  # same per-epoch losses, bit for bit
    assert (resumed.resumed_after, full.resumed_after) == (2, 0)  # so the run's time counts epochs 1-2 too
    for (k, a), b in zip(
        uninterrupted.model.state_dict().items(), resumed_trainer.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), k


def test_ema_validates_and_keeps_the_moving_average_of_the_step_weights():
    """With ema = d, what validation scores (and fit returns) is e_k = d e_(k-1) + (1 - d) w_k over the
    weights w_k after each optimiser step (e_1 = w_1), buffers included."""
    train, val = datasets()
    net = new_net()
    decay, steps = 0.8, 15
    seen_in_training, scored = [], []

    def recording_loss(model, batch):  # the weights after step k are those the (k + 1)-th step sees
        (seen_in_training if model.training else scored).append(
            {k: v.detach().clone() for k, v in model.state_dict().items()}
        )
        return loss_fn(model, batch)

    cfg = tiny_train(epochs=2, ema=decay, max_steps_per_epoch=steps)
    trainer = Trainer(net, recording_loss, cfg)
    result = trainer.fit(train, val)
    after_step = seen_in_training[1 : steps + 1]  # w_1 .. w_15, the weights validation of epoch 1 averages
    for k, first in after_step[0].items():
        if not first.is_floating_point():
            continue  # BatchNorm's step counter
        expected = first.clone()
        for w in after_step[1:]:
            expected = decay * expected + (1 - decay) * w[k]
        torch.testing.assert_close(scored[0][k], expected, rtol=1e-5, atol=1e-6, msg=k)
        assert not torch.allclose(scored[0][k], after_step[-1][k]), k  # not simply the last weights
    per_epoch = len(scored) // 2  # validation batches per epoch
    best_scored = scored[(result.best_epoch - 1) * per_epoch]
    assert all(torch.equal(v, best_scored[k]) for k, v in trainer.model.state_dict().items())  # fit returns it


def test_ema_out_of_range_and_a_resume_with_another_ema_are_refused(tmp_path):
    train, val = datasets()
    with pytest.raises(ValueError, match=r"ema: the decay per step, in \(0, 1\)"):
        Trainer(new_net(), loss_fn, tiny_train(ema=1.5)).fit(train, val)
    Trainer(new_net(), loss_fn, tiny_train(epochs=1), checkpoint_dir=tmp_path).fit(train, val)
    with pytest.raises(ValueError, match=r"written with ema 0\.0, this run has ema 0\.9"):
        Trainer(new_net(), loss_fn, tiny_train(epochs=2, ema=0.9), checkpoint_dir=tmp_path).fit(train, val, resume=True)


def test_early_stopping_restores_the_best_epoch():
    train, val = datasets()
    net = new_net()
    seen = []

    def on_epoch_end(epoch, metrics):
        seen.append({k: v.clone() for k, v in net.state_dict().items()})

    cfg = tiny_train(epochs=6, lr=0.05, patience=1)  # a high lr makes validation worsen quickly
    result = Trainer(net, loss_fn, cfg, on_epoch_end=on_epoch_end).fit(train, val)
    best = seen[result.best_epoch - 1]
    assert all(torch.equal(v, best[k]) for k, v in net.state_dict().items())
    assert result.stopped_early == (result.epochs_run < 6)


def test_callback_can_stop_training():
    train, val = datasets()
    result = Trainer(new_net(), loss_fn, tiny_train(epochs=5), on_epoch_end=lambda e, m: e == 2).fit(train, val)
    assert result.epochs_run == 2 and result.stopped_by_callback


def test_cli_config_starts_from_the_experiment_defaults():
    """`pipelines.train` and a YAML config build on ExperimentConfig's defaults (lr, lr factor,
    patience), not on TrainConfig's generic ones; flags and files override only what they name."""
    from lruts.forecasting.experiment import ExperimentConfig
    from pipelines.train import build_config, parser

    defaults = ExperimentConfig()
    cfg = build_config(parser().parse_args(["--dataset", "ETTh1", "--full"]))
    assert (cfg.train.lr, cfg.train.lr_factor, cfg.train.patience) == (
        defaults.train.lr,
        defaults.train.lr_factor,
        defaults.train.patience,
    )
    assert cfg.model.linear_skip  # the default: validation prefers it (docs/experiments.md, "Linear skip path")
    assert not build_config(parser().parse_args(["--dataset", "ETTh1", "--no-linear-skip"])).model.linear_skip
    assert (cfg.model.loss, build_config(parser().parse_args(["--dataset", "ETTh1", "--loss", "mae"])).model.loss) == (
        "mse",
        "mae",
    )
    # a quick run is tagged, so its folder (L336-H96-quick) never overwrites a protocol run's model
    assert (cfg.tag, build_config(parser().parse_args(["--dataset", "ETTh1"])).tag) == ("", "quick")
    tuned = ExperimentConfig.from_dict({"train": {"lr": 0.01}, "model": {"d_model": 32}})
    assert tuned.train.lr == 0.01 and tuned.train.patience == defaults.train.patience
    assert tuned.model.network.d_model == 32 and tuned.model.segment == defaults.model.segment
    assert tuned.model.network.n_layers == defaults.model.network.n_layers
    # the network's fields nested (as to_dict and best.yaml write them) or flat (older files) mean the same
    assert ExperimentConfig.from_dict({"train": {"lr": 0.01}, "model": {"network": {"d_model": 32}}}) == tuned
    assert ExperimentConfig.from_dict(tuned.to_dict()) == tuned


def test_long_jobs_end_with_one_line_and_an_exit_code(tmp_path, capsys):
    """pipelines.train / pipelines.lra: bad input is one 'error:' line (exit 2), Ctrl-C says the last
    checkpoint is intact (exit 130), never a traceback."""
    from lruts.errors import DataError
    from pipelines import train
    from pipelines._long_job import run_long_job

    def interrupted():
        raise KeyboardInterrupt

    assert run_long_job(lambda: 7) == (7, 0)
    assert run_long_job(interrupted) == (None, 130)
    assert "continue with --resume" in capsys.readouterr().err

    def bad():
        raise DataError("no such column 'x'; choose from ['a']")

    assert run_long_job(bad) == (None, 2)
    assert capsys.readouterr().err == "error: no such column 'x'; choose from ['a']\n"
    missing = tmp_path / "missing.csv"
    assert train.main(["--dataset", str(missing), "--no-track", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "missing.csv" in err and "Traceback" not in err


def test_config_files_are_read_with_one_clear_error_per_mistake(tmp_path, capsys):
    from lruts.errors import ConfigError
    from lruts.forecasting.experiment import ExperimentConfig
    from pipelines import train

    good = tmp_path / "best.yaml"
    good.write_text("dataset: ETTh1\nmodel:\n  normalization: revin\n  dropout: 0.8\ntrain:\n  ema: 0.99\n")
    cfg = ExperimentConfig.from_yaml(good)
    assert (cfg.model.normalization, cfg.model.network.dropout, cfg.train.ema) == ("revin", 0.8, 0.99)
    assert cfg.model.segment == ExperimentConfig().model.segment  # unnamed fields keep the defaults
    cases = {
        "missing.yaml": None,
        "bad.yaml": "model: [unclosed\n",
        "list.yaml": "- 1\n- 2\n",
        "typo.yaml": "model:\n  dropuot: 0.8\n",
        "section.yaml": "train: 5\n",
    }
    messages = {
        "missing.yaml": "no file .*missing.yaml: give the path of a YAML file of experiment settings",
        "bad.yaml": "is not valid YAML",
        "list.yaml": "must hold a mapping",
        "typo.yaml": r"unknown model setting\(s\) \['dropuot'\]; known: \[.*'dropout'",
        "section.yaml": "train settings must be a mapping",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=messages[name]):
            ExperimentConfig.from_yaml(tmp_path / name)
    assert train.main(["--config", str(tmp_path / "typo.yaml"), "--no-track"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "dropuot" in err and "Traceback" not in err


def test_tuning_starts_from_a_config_file_and_its_space_covers_the_measured_best(tmp_path):
    import dataclasses

    from lruts.forecasting.experiment import ExperimentConfig
    from lruts.forecasting.tuning import SPACE, apply
    from pipelines.tune import build_config, parser

    base = tmp_path / "base.yaml"
    base.write_text("dataset: ETTh1\nhorizons: [336]\nmodel:\n  anchor: patch_mean\ntrain:\n  seed: 7\n")
    cfg = build_config(parser().parse_args(["--config", str(base), "--trials", "1"]))
    assert (cfg.dataset, cfg.horizons, cfg.model.anchor, cfg.train.epochs) == (
        "ETTh1",
        [336],
        "patch_mean",
        ExperimentConfig().train.epochs,
    )
    cfg = build_config(parser().parse_args(["--config", str(base), "--trials", "1", "--horizon", "720"]))
    assert cfg.horizons == [720] and cfg.model.anchor == "patch_mean"  # a flag overrides only its field
    assert cfg.train.seed == 7  # the config's seed, unless --seed is given
    assert build_config(parser().parse_args(["--config", str(base), "--trials", "1", "--seed", "3"])).train.seed == 3
    plain = build_config(parser().parse_args(["--dataset", "ETTm1", "--trials", "1"]))
    assert (plain.horizons, plain.train.epochs) == ([96], 6)

    # the configuration of the ETTh1 results (RevIN, P = 48, dropout 0.8; docs/results.md) is a point of the space
    best = {"model.normalization": "revin", "model.segment": 48, "model.dropout": 0.8}
    for key, value in best.items():
        kind, *spec = SPACE[key]
        assert value in spec[0] if kind == "categorical" else spec[0] <= value <= spec[1], key
    for key in SPACE:  # and every field it samples exists (the model's network fields by their flat names)
        section, name = key.split(".")
        names = (
            ForecastNetConfig.option_names()
            if section == "model"
            else {f.name for f in dataclasses.fields(TrainConfig)}
        )
        assert name in names, key
    tuned = apply(ExperimentConfig(), {**best, "model.d_model": 32})
    assert (tuned.model.segment, tuned.model.network.d_model, tuned.model.network.dropout) == (48, 32, 0.8)


def test_resuming_an_early_stopped_fit_trains_no_further_epoch(tmp_path):
    train, val = datasets()
    cfg = tiny_train(epochs=6, lr=1e-30, patience=1)  # weights cannot move: validation cannot improve
    done = Trainer(new_net(), loss_fn, cfg, checkpoint_dir=tmp_path).fit(train, val)
    assert (done.epochs_run, done.stopped_early) == (2, True)
    again = Trainer(new_net(), loss_fn, cfg, checkpoint_dir=tmp_path).fit(train, val, resume=True)
    assert (again.epochs_run, again.stopped_early, again.resumed_after) == (2, True, 2)
    assert [h["val_loss"] for h in again.history] == [h["val_loss"] for h in done.history]


def test_the_trainer_moves_a_named_batch_and_tuples_lists_and_dicts_of_tensors():
    trainer = Trainer(new_net(), loss_fn, tiny_train(device="meta"))
    x, y = torch.zeros(2, 48, 3), torch.zeros(2, 12, 3)
    named = trainer.to_device(WindowBatch(x, y))
    assert isinstance(named, WindowBatch) and named.x.is_meta and named.y.is_meta and named.y_mask is None
    for batch in ((x, y), [x, y]):
        moved = trainer.to_device(batch)
        assert type(moved) is type(batch) and all(t.is_meta for t in moved)
    assert all(t.is_meta for t in trainer.to_device({"x": x, "mask": y > 0}).values())


@pytest.mark.parametrize("n", [1, 7, 200_001])  # 200,001: several chunks, the last one short
@pytest.mark.parametrize("seed", [0, 11])
def test_permutation_sampler_draws_random_samplers_order(n, seed):
    ours = PermutationSampler(n, torch.Generator().manual_seed(seed))
    torchs = torch.utils.data.RandomSampler(range(n), generator=torch.Generator().manual_seed(seed))
    assert len(ours) == n
    assert list(ours) == list(torchs)


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffled_loader_batches_equal_torchs_shuffled_loader(drop_last):
    data = torch.utils.data.TensorDataset(torch.arange(1000))
    ours = make_loader(data, 32, shuffle=True, seed=5, drop_last=drop_last)
    torchs = torch.utils.data.DataLoader(
        data, 32, shuffle=True, generator=torch.Generator().manual_seed(5), drop_last=drop_last
    )
    assert isinstance(ours.sampler, PermutationSampler)
    ours_batches, torchs_batches = [b[0].tolist() for b in ours], [b[0].tolist() for b in torchs]
    assert ours_batches[0] != list(range(32))  # shuffled
    assert ours_batches == torchs_batches


def training_batches(train, val, **kw) -> list[list[float]]:
    """The batches one epoch of Trainer.fit trains on, by their windows' first targets."""
    seen: list[list[float]] = []

    def recording_loss(model, batch):
        if model.training:
            seen.append(batch.y[:, 0, 0].tolist())
        return loss_fn(model, batch)

    Trainer(new_net(), recording_loss, tiny_train(epochs=1, **kw)).fit(train, val)
    return seen


def test_an_epoch_of_a_short_training_set_draws_it_again_up_to_the_floor():
    """min_steps_per_epoch: a set of fewer batches is passed over again, every window once per pass and each
    pass in its own order; its first pass is the one an epoch without it reads."""
    train, val = datasets()  # 541 windows: 17 batches of 32
    batches = training_batches(train, val, max_steps_per_epoch=None, min_steps_per_epoch=40)
    assert len(batches) == 40
    first, second = ([y for b in batches[k : k + 17] for y in b] for k in (0, 17))
    every_window = train.__getitems__(list(range(len(train)))).y[:, 0, 0].tolist()
    assert sorted(first) == sorted(second) == sorted(every_window)
    assert first != second
    assert training_batches(train, val, max_steps_per_epoch=None) == batches[:17]
