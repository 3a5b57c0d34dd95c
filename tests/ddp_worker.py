"""Run by tests/test_ddp.py under torchrun: train a tiny forecaster with DDP and save what each rank ends with."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from forecast_fixtures import tiny_train
from test_training import datasets, loss_fn, new_net

from lruts.training import Trainer

out, ema = sys.argv[1], float(sys.argv[2])
train, val = datasets()
cfg = tiny_train(epochs=2, max_steps_per_epoch=None, ema=ema)
trainer = Trainer(new_net(), loss_fn, cfg, checkpoint_dir=f"{out}/ckpt")
before = trainer.evaluate_loss(val)
result = trainer.fit(train, val)
rank = trainer.rank
torch.save(trainer.model.state_dict(), f"{out}/rank{rank}.pt")
with open(f"{out}/rank{rank}.json", "w") as f:
    json.dump(
        {
            "world": trainer.world,
            "backend": torch.distributed.get_backend(),
            "before": before,
            "best_val": result.best_val_loss,
            "steps": trainer._steps_per_epoch(train),
        },
        f,
    )
torch.distributed.destroy_process_group()
