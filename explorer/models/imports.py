"""Import a user's own model (.keras or .tflite), validated at the edge; nothing from the file is ever executed.

    $ python -m explorer import-model resnet my_resnet.keras --scale 0-1

A .keras file is a zip: its members are checked as an upload's are (sizes, a zip bomb, unsafe paths), its
config.json is read as data first (a Lambda layer, a custom or subclassed class is refused by name), then
rewritten into one flat tf-keras graph every lever takes, whichever Keras wrote it (explorer.models.keras_file:
Keras 3 translated, nested models inlined, op layers as built-in layers, augmentation set aside for training)
and built from built-in layers with the file's weights; that model is what is stored. A .tflite is opened by
LiteRT. Either must take one image
input (height x width x 1 or 3) and give one class output. Anything else (.h5, a SavedModel, a pickle) is
refused with how to re-save it as .keras. The file lands in its own folder, written atomically, under the
user-data folder; its content hash names it in every variant built from it (spec.model = file:NAME@HASH).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from explorer.data import uploads
from explorer.models.architecture import LayerPlan
from explorer.spec import ModelSource, VariantSpec
from explorer.store import paths
from explorer.store.cache import atomic_folder, clean_stale_folders

SCALE_NAMES = ("0-1", "-1-1", "0-255")
AUTO = "auto"  # the range the model's first layer implies (a Rescaling of 0-255 images), else 0-1
KERAS_CLASSES = ("Functional", "Sequential", "Model")  # a subclassed model's config names its own class
RESAVE = "load it in your own code and save it as .keras: model.save('model.keras')"


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 200 * 2**20  # the file itself
    max_members: int = 16  # a .keras zip holds three
    max_uncompressed_bytes: int = 1024 * 2**20  # zip-bomb guard


class ModelImportError(ValueError):
    """The file cannot become a model source; the message says why and what to do."""


@dataclass(frozen=True)
class ImportedModel:
    name: str
    kind: str  # "keras" or "tflite"
    sha: str  # 12 hex digits of the file's and the scale's hash
    scale: str  # the input range the model expects (SCALE_NAMES)
    input_shape: tuple[int, int, int]
    classes: int
    outputs: str  # "softmax" (probabilities) or "logits" (a softmax is added when it is trained)
    params: int
    path: Path
    layers: tuple[LayerPlan, ...] = ()  # a .tflite's ops (a .keras model's are read from it when built)
    augmentation: tuple[dict, ...] = ()  # tf-keras configs of the augmentation layers set aside for training
    notes: tuple[str, ...] = ()  # what the import did to the model, in words

    @property
    def source(self) -> str:
        return f"file:{self.name}@{self.sha}"

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("path")
        d["layers"] = [dataclasses.asdict(lp) for lp in self.layers]
        d["augmentation"], d["notes"] = list(self.augmentation), list(self.notes)
        return d


def models_dir() -> Path:
    return paths.state_dir() / "models"


def _check_name(name: str) -> None:
    try:
        VariantSpec(model=f"file:{name}@{'0' * 12}")
    except ValueError as exc:
        raise ModelImportError(f"model name {name!r}: use lower-case letters, digits, '-' or '_'") from exc
    if (models_dir() / name).exists():
        raise ModelImportError(f"a model named {name!r} exists already; choose another name (or delete it)")


def _kind(data: bytes, filename: str) -> str:
    """'keras' or 'tflite' from the bytes themselves (never the name alone); anything else is refused."""
    if data[4:8] == b"TFL3":
        return "tflite"
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
        if "config.json" in names:
            return "keras"
        if any(n.endswith("saved_model.pb") for n in names):
            raise ModelImportError(f"{filename} is a zipped SavedModel, not a .keras file: {RESAVE}")
        raise ModelImportError(f"{filename} is a zip without config.json: not a .keras model ({RESAVE})")
    if data.startswith(b"\x89HDF\r\n\x1a\n"):
        raise ModelImportError(f"{filename} is an HDF5 (.h5) model, a legacy format that can hold code: {RESAVE}")
    if data[:1] == b"\x80" or filename.endswith((".pkl", ".pickle", ".joblib")):
        raise ModelImportError(f"{filename} looks like a pickle, which runs code when loaded: refused ({RESAVE})")
    if data.startswith(b"\x08") and filename.endswith(".pb"):
        raise ModelImportError(f"{filename} is a SavedModel's graph, not a model file: {RESAVE}")
    raise ModelImportError(f"{filename} is neither a .keras model (a zip) nor a .tflite flatbuffer: {RESAVE}, or "
                           "convert it to .tflite")


def _check_zip(data: bytes, limits: Limits) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise ModelImportError(f"the .keras zip holds {len(infos)} members; a model holds a few (at most "
                                   f"{limits.max_members})")
        for i in infos:
            if uploads.unsafe_member(i.filename):
                raise ModelImportError(f"unsafe path in the .keras zip: {i.filename!r} (absolute or '..' names are refused)")
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_uncompressed_bytes:
            raise ModelImportError(f"the .keras zip unpacks to {declared / 2**20:,.0f} MiB; at most "
                                   f"{limits.max_uncompressed_bytes / 2**20:,.0f} MiB are accepted")
        try:
            config = json.loads(zf.read("config.json"))
        except ValueError as exc:
            raise ModelImportError(f"config.json in the .keras zip is not valid JSON ({exc})") from exc
    _check_config(config)


def _layers_of(config: dict):
    cfg = config.get("config") if isinstance(config, dict) else None
    layers = cfg.get("layers") if isinstance(cfg, dict) else None
    for layer in layers if isinstance(layers, list) else []:
        yield layer
        if isinstance(layer, dict) and isinstance(layer.get("config"), dict) and "layers" in layer["config"]:
            yield from _layers_of(layer)


def _check_config(config: dict) -> None:
    """Refuse, by name, what safe loading would refuse or run: subclassed models, Lambda layers, custom classes."""
    if not isinstance(config, dict) or config.get("class_name") not in KERAS_CLASSES:
        got = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ModelImportError(f"the model is a subclassed Keras model ({got}): its code is not in the file. Rebuild "
                               "it with the Functional or Sequential API, then save it as .keras")
    for layer in _layers_of(config):
        if not isinstance(layer, dict):
            raise ModelImportError(f"config.json lists {str(layer)[:40]!r} as a layer: save the model again")
        cfg = layer.get("config")
        name = cfg.get("name", "?") if isinstance(cfg, dict) else "?"
        cls = layer.get("class_name")
        module = str(layer.get("module") or "keras")
        if cls == "Lambda":
            raise ModelImportError(f"layer {name!r} is a Lambda layer: it holds Python code, which is never run from "
                                   "an upload. Replace it with a built-in layer, then save the model again")
        if not (module.startswith(("keras", "tf_keras", "tensorflow")) or module == "builtins") or layer.get(
                "registered_name", cls) not in (None, cls):
            raise ModelImportError(f"layer {name!r} is a custom class ({layer.get('registered_name') or cls}, from "
                                   f"{module}): its code is not in the file. Use built-in layers only")


def load_keras(path: Path):
    """A validated .keras file as a Keras model, loaded with safe_mode=True (no code from the file runs), ending
    in a Softmax layer of its own: added after logits (training takes probabilities), or split from a last layer
    whose activation is softmax (the same function; a full-int8 conversion then ends at the logits, whose argmax
    is the class, instead of an int8 softmax that XNNPACK does not run)."""
    from explorer.models.tf_runtime import keras

    m = keras.models.load_model(path, safe_mode=True, compile=False)
    last = m.layers[-1]
    if type(last).__name__ == "Softmax":
        return m
    if getattr(getattr(last, "activation", None), "__name__", "") == "softmax":
        last.activation = keras.activations.linear  # the layer now gives its logits; the Softmax layer follows
    return keras.Model(m.inputs, keras.layers.Softmax(name="softmax")(m.outputs[0]), name=m.name)


def _io_shapes(inputs: list, outputs: list) -> tuple[tuple[int, int, int], int]:
    if len(inputs) != 1:
        raise ModelImportError(f"the model has {len(inputs)} inputs; it needs a single image input")
    shape = tuple(inputs[0])
    if len(shape) != 4 or any(d is None or d <= 0 for d in shape[1:]) or shape[3] not in (1, 3):
        raise ModelImportError(f"the model's input is {shape}; it needs one image of a fixed size: "
                               "(batch, height, width, 1 or 3 channels)")
    if len(outputs) != 1 or len(tuple(outputs[0])) != 2 or (outputs[0][-1] or 0) < 2:
        raise ModelImportError(f"the model's output is {[tuple(o) for o in outputs]}; it needs one class output "
                               "(batch, classes), classes at least 2")
    return (int(shape[1]), int(shape[2]), int(shape[3])), int(outputs[0][-1])


def _inspect_keras(data: bytes) -> dict:
    """The model every lever takes, read from the archive (explorer.models.keras_file), and what it is."""
    from explorer.models import keras_file
    from explorer.models.graph_ir import GraphError

    try:
        m, ready = keras_file.load(data)
    except GraphError as exc:
        raise ModelImportError(str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - whatever tf-keras says of a graph it cannot build, said plainly
        raise ModelImportError(f"the model cannot be rebuilt from its file: {type(exc).__name__}: {exc}") from exc
    input_shape, classes = _io_shapes([m.input_shape] if not isinstance(m.input_shape, list) else m.input_shape,
                                      [m.output_shape] if not isinstance(m.output_shape, list) else m.output_shape)
    last = m.layers[-1]
    soft = type(last).__name__ == "Softmax" or getattr(getattr(last, "activation", None), "__name__", "") == "softmax"
    with tempfile.TemporaryDirectory() as tmp:
        m.save(Path(tmp) / "model.keras")
        stored = (Path(tmp) / "model.keras").read_bytes()
    return {"input_shape": input_shape, "classes": classes, "outputs": "softmax" if soft else "logits",
            "params": int(m.count_params()), "layers": (), "augmentation": ready.augmentation, "notes": ready.notes,
            "implied_scale": ready.scale, "stored": stored}


def _inspect_tflite(data: bytes) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_content=data)
        interp.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 - LiteRT's reason, said plainly
        raise ModelImportError(f"LiteRT cannot load this .tflite: {exc}") from exc
    ins, outs = interp.get_input_details(), interp.get_output_details()
    input_shape, classes = _io_shapes([[None, *d["shape"][1:]] for d in ins], [[None, *d["shape"][1:]] for d in outs])
    tensors = interp.get_tensor_details()
    shapes = {t["index"]: tuple(int(x) for x in t["shape"][1:]) for t in tensors}
    ops = interp._get_ops_details()  # noqa: SLF001 -- LiteRT's only view of the graph's nodes
    layers = tuple(LayerPlan(f"{i}_{d['op_name'].lower()}", d["op_name"].lower(), shapes.get(d["outputs"][0], ()),
                             0, 0) for i, d in enumerate(ops) if len(d["outputs"]))
    return {"input_shape": input_shape, "classes": classes, "outputs": "softmax", "params": 0, "layers": layers,
            "implied_scale": None, "stored": data}


def _scale(asked: str, implied: str | None) -> tuple[str, tuple[str, ...]]:
    """The input range the model is imported with, and a note when the model's first layer decided it or
    disagrees with what was asked."""
    if asked == AUTO:
        if implied:
            return implied, (f"takes {implied} images: its first layer rescales them",)
        return "0-1", ()
    if implied and implied != asked:
        return asked, (f"imported as taking {asked} images as asked, though its first layer rescales {implied} "
                       "images (import it with --scale auto to follow the model)",)
    return asked, ()


def import_bytes(name: str, data: bytes, filename: str, scale: str = AUTO, limits: Limits = Limits()) -> ImportedModel:
    """Validate a model file and store it as a source; ModelImportError (nothing stored) when it cannot be one."""
    if scale not in (*SCALE_NAMES, AUTO):
        raise ModelImportError(f"scale {scale!r}: the input range must be one of {', '.join((*SCALE_NAMES, AUTO))}")
    _check_name(name)
    if len(data) > limits.max_bytes:
        raise ModelImportError(f"{filename} is {len(data) / 2**20:,.0f} MiB; at most {limits.max_bytes / 2**20:,.0f} "
                               "MiB are accepted")
    try:
        kind = _kind(data, filename)
        if kind == "keras":
            _check_zip(data, limits)
            found = _inspect_keras(data)
        else:
            found = _inspect_tflite(data)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise ModelImportError(f"{filename} is a damaged or truncated archive ({exc}): save the model again") from exc
    stored = found.pop("stored")
    scale, said = _scale(scale, found.pop("implied_scale"))
    found["notes"] = tuple(found.get("notes", ())) + said
    sha = hashlib.sha256(data + scale.encode()).hexdigest()[:12]
    root = models_dir()
    clean_stale_folders(root / ".tmp")
    file = "model.keras" if kind == "keras" else "model.tflite"
    made = ImportedModel(name, kind, sha, scale, path=root / name / file, **found)
    with atomic_folder(root / name, root / ".tmp", name, lambda p: (p / "source.json").is_file()) as tmp:
        (tmp / file).write_bytes(stored)
        (tmp / "source.json").write_text(json.dumps(made.to_json()))
    return made


def import_path(name: str, path: Path, scale: str = AUTO, limits: Limits = Limits()) -> ImportedModel:
    path = Path(path)
    if path.is_dir():
        raise ModelImportError(f"{path} is a folder (a SavedModel?), not a model file: {RESAVE}")
    if not path.is_file():
        raise ModelImportError(f"no file at {path}")
    if path.stat().st_size > limits.max_bytes:
        raise ModelImportError(f"{path.name} is {path.stat().st_size / 2**20:,.0f} MiB; at most "
                               f"{limits.max_bytes / 2**20:,.0f} MiB are accepted")
    return import_bytes(name, path.read_bytes(), path.name, scale, limits)


def _read(folder: Path) -> ImportedModel:
    d = json.loads((folder / "source.json").read_text())
    file = "model.keras" if d["kind"] == "keras" else "model.tflite"
    return ImportedModel(d["name"], d["kind"], d["sha"], d["scale"], tuple(d["input_shape"]), d["classes"],
                         d["outputs"], d["params"], folder / file,
                         tuple(LayerPlan(lp["name"], lp["kind"], tuple(lp["output_shape"]), lp["params"], lp["macs"])
                               for lp in d.get("layers", ())), tuple(d.get("augmentation", ())), tuple(d.get("notes", ())))


def available() -> list[ImportedModel]:
    root = models_dir()
    if not root.is_dir():
        return []
    return [_read(p) for p in sorted(root.iterdir()) if (p / "source.json").is_file() and not p.name.startswith(".")]


def find(source: str) -> ImportedModel:
    """The imported model a spec names (file:NAME@HASH); a SpecError when it is not here, or was replaced."""
    from explorer.spec import SpecError

    parsed = ModelSource.parse(source)
    name, sha = parsed.name, parsed.hash
    folder = models_dir() / name
    if not (folder / "source.json").is_file():
        raise SpecError("model", f"no imported model named {name!r} here (python -m explorer import-model {name} FILE)",
                        source)
    found = _read(folder)
    if found.sha != sha:
        raise SpecError("model", f"the imported model {name!r} here is another file (hash {found.sha}, not {sha})", source)
    return found


def delete(name: str, store) -> int:
    """Remove an imported model and every cached variant built from it; returns how many variants went."""
    from explorer import record

    folder = models_dir() / name
    if not (folder / "source.json").is_file():
        raise ModelImportError(f"there is no imported model named {name!r}")
    source = _read(folder).source
    gone = record.keys_where(store, lambda spec: spec.model == source)
    for key in gone:
        store.remove(store.kind_of(key), key)
    trash = folder.with_name(f".{name}-{uuid.uuid4().hex[:8]}.deleted")
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return len(gone)
