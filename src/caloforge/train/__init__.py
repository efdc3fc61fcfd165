"""Training: configuration, the loop (EMA, validation, early stopping, resume), checkpoints."""

from caloforge.train.checkpoint import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    STATE_FORMAT,
    load_model_file,
    load_training_state,
    read_checkpoint,
    save_model_file,
    save_training_state,
)
from caloforge.train.config import TrainConfig, load_train_config
from caloforge.train.ema import EMA
from caloforge.train.layer_finetune import LayerFinetuneResult, finetune_layer_model
from caloforge.train.loop import RESUMABLE_CHANGES, TrainResult, learning_rate, train, validation_loss

__all__ = [
    "EMA",
    "LayerFinetuneResult",
    "MODEL_FORMAT",
    "RESUMABLE_CHANGES",
    "MODEL_FORMAT_VERSION",
    "STATE_FORMAT",
    "TrainConfig",
    "TrainResult",
    "finetune_layer_model",
    "learning_rate",
    "load_model_file",
    "load_train_config",
    "load_training_state",
    "read_checkpoint",
    "save_model_file",
    "save_training_state",
    "train",
    "validation_loss",
]
