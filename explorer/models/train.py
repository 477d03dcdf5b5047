"""Training: compile and fit a Keras model on a dataset, reporting progress as it goes.

Shared by every training stage (base training, pruning, clustering and QAT fine-tunes) so they all
use one recipe: Adam, sparse categorical cross-entropy, validation on the held-out split, and the
spec's training levers (augmentation of the training split only, balanced class weights). Base
training adds early stopping and trains small datasets for more epochs (VariantSpec.base_epochs).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from explorer.measure import gate
from explorer.data.datasets import Dataset
from explorer.models.tf_runtime import data_adapter, keras, tf

# on_progress(fraction of this stage done in [0, 1], human-readable status line); at an epoch's end also
# epoch= (1-based), epochs=, val_accuracy= and epoch_seconds= (a search stops a trial there, by raising)
StageProgress = Callable[..., None]


class _ProgressCallback(keras.callbacks.Callback):
    """Reports every few batches and at each epoch's end, with loss and accuracy."""

    def __init__(self, epochs: int, steps: int, on_progress: StageProgress, label: str):
        super().__init__()
        self.epochs, self.steps, self.on_progress, self.label = epochs, steps, on_progress, label
        self.epoch = 0
        self.every = max(1, steps // 20)
        self.started = time.perf_counter()
        self.last = ""  # the previous epoch's time, shown with every batch's line

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            logs = logs or {}
            done = (self.epoch + (batch + 1) / self.steps) / self.epochs
            self.on_progress(min(done, 1.0), f"{self.label}: epoch {self.epoch + 1}/{self.epochs}, "
                             f"loss {logs.get('loss', float('nan')):.3f}, "
                             f"accuracy {logs.get('accuracy', float('nan')):.3f}{self.last}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self.started
        self.last = f" (last epoch {seconds:.1f} s)"
        val = logs.get("val_accuracy", float("nan"))
        self.on_progress((epoch + 1) / self.epochs,
                         f"{self.label}: epoch {epoch + 1}/{self.epochs} done in {seconds:.1f} s, val accuracy {val:.3f}",
                         epoch=epoch + 1, epochs=self.epochs, val_accuracy=float(val), epoch_seconds=seconds)


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


def class_weights(y_train: np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced weights, n / (classes * count), from the training split only (absent classes weigh 0)."""
    counts = np.bincount(y_train, minlength=num_classes)
    return {c: float(len(y_train) / (num_classes * n)) if n else 0.0 for c, n in enumerate(counts)}


def augmenter(spec, flips: bool, imported: tuple[dict, ...] = ()) -> keras.Sequential:
    """Random shifts of up to 8 % (2 pixels of 28), plus horizontal flips where they keep the label.
    No rotation or zoom: shifts and zoom of 10 % cost the reference CNN 5 points on Fashion-MNIST in 30 epochs
    (0.849 vs 0.896), and on the small-data recipe, adding rotations of 5 degrees and zoom of 5 % to the shifts
    scored 0.796 / 0.867 / 0.979 against 0.833 / 0.876 / 0.979 (Fashion-MNIST 1k, 3k, digits; three seeds each).
    An imported model's own augmentation layers (`imported`, set aside from it at import) follow, as it applied them.
    """
    kl = keras.layers
    layers = []
    if spec.augment:
        layers.append(kl.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=spec.seed))
        if flips:
            layers.append(kl.RandomFlip("horizontal", seed=spec.seed))
    layers += [kl.deserialize({"class_name": c["class_name"], "config": {**c["config"], "seed": spec.seed}})
               for c in imported]
    return keras.Sequential(layers, name="augment")


def training_data(data: Dataset, spec, epochs: int) -> dict:
    """The training split as fit() takes it: a shuffled tf.data pipeline, which (with augmentation) augments every
    batch afresh. Validation and test data never pass through here.

    Without augmentation it is the very pipeline fit() would make of the arrays (same batches, same order, the same
    weights: tested), with one change: tf.data's autotuning is off. Its background thread sleeps for up to a
    minute between passes, and TensorFlow 2.21 waits for it when fit() drops the iterator: a 128x128 build sat
    28 to 33 s after its last epoch, about one run in two."""
    options = tf.data.Options()
    options.autotune.enabled = False
    if not spec.augment and not data.augmentation:
        adapter = data_adapter.TensorLikeDataAdapter(data.x_train, data.y_train, batch_size=spec.batch_size,
                                                     epochs=epochs, shuffle=True)
        return {"x": adapter.get_dataset().with_options(options), "steps_per_epoch": adapter.get_size()}
    aug = augmenter(spec, data.info.flips, data.augmentation)
    pipeline = (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
                .shuffle(len(data.x_train), seed=spec.seed, reshuffle_each_iteration=True)
                .batch(spec.batch_size)
                .map(lambda x, y: (aug(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE)
                .with_options(options))
    return {"x": pipeline}


def fit(model: keras.Model, data: Dataset, spec, *, epochs: int, learning_rate: float, on_progress: StageProgress,
        label: str, callbacks: list[keras.callbacks.Callback] | None = None,
        early_stop: bool = False) -> dict[str, list[float]]:
    """Compile (fresh Adam optimizer) and train model in place with the spec's levers (augmentation, class
    weights; with early_stop, the learning rate drops 3x when validation accuracy plateaus for half the
    patience, and training ends after a whole patience without progress, keeping the best epoch's weights).
    Returns the Keras history."""
    keras.utils.set_random_seed(spec.seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    steps = -(-len(data.x_train) // spec.batch_size)
    extra = list(callbacks or [])
    if early_stop and spec.patience:  # a plateau first lowers the learning rate, then (longer) ends training
        extra.append(keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.3,
                                                       patience=max(1, spec.patience // 2), min_lr=learning_rate / 100))
        extra.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=spec.patience,
                                                   restore_best_weights=True))
    weights = class_weights(data.y_train, data.info.num_classes) if spec.class_weight == "balanced" else None
    stepper = gate.machine().stepper()
    try:  # the gate callback comes last: progress is reported while the step still holds the gate
        history = model.fit(
            **training_data(data, spec, epochs), validation_data=(data.x_val, data.y_val), class_weight=weights,
            epochs=epochs, verbose=0,
            callbacks=[*extra, _ProgressCallback(epochs, steps, on_progress, label), _GateCallback(stepper)],
        )
    finally:
        stepper.close()
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def train_base(model: keras.Model, data: Dataset, spec, on_progress: StageProgress) -> dict[str, list[float]]:
    """The base recipe: base_epochs() at the spec's learning rate, with early stopping."""
    return fit(model, data, spec, epochs=spec.base_epochs(len(data.x_train)), learning_rate=spec.learning_rate,
               on_progress=on_progress, label="Training", early_stop=True)


def fine_tune(model: keras.Model, data: Dataset, spec, on_progress: StageProgress, label: str,
              callbacks: list[keras.callbacks.Callback] | None = None, lr_scale: float = 0.1) -> dict[str, list[float]]:
    """The one fine-tune recipe of pruning, clustering and QAT: spec.tune_epochs at a tenth of the learning rate
    (channel pruning, which changes the network more, recovers at 0.3: measured 0.4-0.7 points better at 50 %)."""
    return fit(model, data, spec, epochs=spec.tune_epochs, learning_rate=spec.learning_rate * lr_scale,
               on_progress=on_progress, label=label, callbacks=callbacks)
