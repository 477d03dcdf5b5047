"""Training: compile and fit a Keras model on a dataset, reporting progress as it goes.

Shared by every training stage (base training, pruning, clustering and QAT fine-tunes) so they all
use one recipe: Adam, sparse categorical cross-entropy, validation on the held-out split.
"""

from __future__ import annotations

from typing import Callable

from explorer import gate
from explorer.datasets import Dataset
from explorer.tf_runtime import keras

# on_progress(fraction of this stage done in [0, 1], human-readable status line)
StageProgress = Callable[[float, str], None]


class _ProgressCallback(keras.callbacks.Callback):
    """Reports every few batches and at each epoch's end, with loss and accuracy."""

    def __init__(self, epochs: int, steps: int, on_progress: StageProgress, label: str):
        super().__init__()
        self.epochs, self.steps, self.on_progress, self.label = epochs, steps, on_progress, label
        self.epoch = 0
        self.every = max(1, steps // 20)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            logs = logs or {}
            done = (self.epoch + (batch + 1) / self.steps) / self.epochs
            self.on_progress(min(done, 1.0), f"{self.label}: epoch {self.epoch + 1}/{self.epochs}, "
                             f"loss {logs.get('loss', float('nan')):.3f}, "
                             f"accuracy {logs.get('accuracy', float('nan')):.3f}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.on_progress((epoch + 1) / self.epochs,
                         f"{self.label}: epoch {epoch + 1}/{self.epochs} done, "
                         f"val accuracy {logs.get('val_accuracy', float('nan')):.3f}")


class _GateCallback(keras.callbacks.Callback):
    """Holds the machine's CPU gate around every batch, so a latency measurement pauses training."""

    def __init__(self, stepper: gate.Stepper):
        super().__init__()
        self.stepper = stepper

    def on_train_batch_begin(self, batch, logs=None):
        self.stepper.begin()

    def on_train_batch_end(self, batch, logs=None):
        self.stepper.end()

    def on_test_begin(self, logs=None):  # validation at an epoch's end is CPU work too
        self.stepper.begin()

    def on_test_end(self, logs=None):
        self.stepper.end()


def fit(model: keras.Model, data: Dataset, *, epochs: int, learning_rate: float, batch_size: int,
        seed: int, on_progress: StageProgress, label: str,
        callbacks: list[keras.callbacks.Callback] | None = None) -> dict[str, list[float]]:
    """Compile (fresh Adam optimizer) and train model in place; returns the Keras history."""
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = -(-len(data.x_train) // batch_size)
    stepper = gate.machine().stepper()
    try:  # the gate callback comes last: progress is reported while the step still holds the gate
        history = model.fit(
            data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
            epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0,
            callbacks=[*(callbacks or []), _ProgressCallback(epochs, steps, on_progress, label),
                       _GateCallback(stepper)],
        )
    finally:
        stepper.close()
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def fine_tune(model: keras.Model, data: Dataset, spec, on_progress: StageProgress, label: str,
              callbacks: list[keras.callbacks.Callback] | None = None) -> dict[str, list[float]]:
    """The one fine-tune recipe of pruning, clustering and QAT: spec.tune_epochs at a tenth of the learning rate."""
    return fit(model, data, epochs=spec.tune_epochs, learning_rate=spec.learning_rate / 10,
               batch_size=spec.batch_size, seed=spec.seed, on_progress=on_progress, label=label, callbacks=callbacks)
