"""A lever that fails on a network says so in one sentence: which lever, which layer, what would work.

tfmot, the converter and TensorFlow raise their own errors (an unsupported layer, a kernel smaller than the
clusters asked for, an op the converter cannot quantize), with tracebacks that name their internals. A build
runs each lever inside `failing_as`, so a user reads the lever, the layer the library named and what to try,
in the CLI, in the app's job and in a search's trial; nothing half built is stored, as for any failed build.
"""

from __future__ import annotations

import contextlib
import re

HINTS = {"pruning": "build it without pruning (sparsity 0): the other levers still apply",
         "clustering": "build it without clustering, or with fewer clusters",
         "quantization-aware training": "use post-training int8 (quantization int8) instead",
         "conversion": "try another quantization mode (fp32 converts every network Keras can run)",
         "training": "check the model's input and output against the dataset"}
# The exceptions a library raises for a network it cannot handle; a stop or a cancel passes through.
LIBRARY_ERRORS = (ValueError, TypeError, KeyError, AttributeError, NotImplementedError, IndexError, RuntimeError)


class LeverError(ValueError):
    """A lever failed on this network; the message names it and what to do."""


def layer_named(message: str) -> str | None:
    """The layer a library's message names ("Layer conv1 ...", "layer 'conv1'"), if it names one."""
    found = re.search(r"[Ll]ayer\s+['\"]([\w./-]+)['\"]|[Ll]ayer\s+([\w./-]+):\s*<class", message)
    return (found.group(1) or found.group(2)) if found else None


def said(lever: str, model: str, exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    layer = layer_named(text)
    where = f" at layer {layer!r}" if layer else ""
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0][:240]
    return (f"{lever} failed on {model or 'the built-in network'}{where}: {first} ({type(exc).__name__}). "
            f"{HINTS.get(lever, '').capitalize()}".rstrip())


@contextlib.contextmanager
def failing_as(lever: str, model: str):
    """Run a lever; a library's error becomes a LeverError with a sentence a user can act on."""
    from explorer.models.tf_runtime import tf

    try:
        yield
    except LeverError:
        raise
    except (*LIBRARY_ERRORS, tf.errors.OpError) as exc:
        raise LeverError(said(lever, model, exc)) from exc
