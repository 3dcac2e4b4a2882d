"""The modeling stage: train(dataset, out, config) fits an avatar to a dataset (run.py), one step at a time
(trainer.py) with its losses, densification and checkpoints."""

from engine.train.config import TrainConfig
from engine.train.run import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
