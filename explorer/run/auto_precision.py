"""Precision "auto" made concrete on a host: the layers its int8 and fp32 siblings' op profiles, measured there,
show slower in int8 are kept in float, and a sibling that measures faster than that candidate is kept instead.
"auto:D" also keeps in float the layers its bound needs (explorer.run.accuracy_bound, chosen once at build), and
gives the int8 sibling only where full int8 is within the bound.

    >>> auto = auto_precision.auto_precision(spec.replace(precision="auto"), store)
    >>> auto.chosen, auto.text()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from explorer.measure import host, precision
from explorer.record import Latency, PrecisionBound, VariantRecord
from explorer.run import accuracy_bound
from explorer.spec import SpecError, VariantSpec
from explorer.store.cache import Store


@dataclass(frozen=True)
class AutoPrecision:
    """Precision "auto" on one host: the candidate its siblings' op profiles choose, its p50 once timed, and the
    variant kept: the candidate, or the faster sibling where that measured faster (fallback names which)."""

    candidate: VariantSpec
    chosen: VariantSpec
    p50_us: Mapping[str, float]  # "candidate" (once timed), "int8", "fp32"
    fallback: str | None = None
    speed: tuple[str, ...] = ()  # the layers kept in float because they are slower in int8 here
    bound: PrecisionBound | None = None  # "auto:D": the layers kept in float for accuracy, once chosen
    max_drop: float | None = None
    alternative: VariantSpec | None = None  # "auto:D" with layers for speed too: the accuracy layers alone, also timed
    together_us: float | None = None  # the p50 of speed and accuracy layers together, where the alternative won

    @property
    def timed(self) -> bool:
        return "candidate" in self.p50_us and (self.alternative is None or "alternative" in self.p50_us)

    @property
    def bound_pending(self) -> bool:
        """An "auto:D" whose layers for accuracy are not chosen yet (they are at build, from the model)."""
        return self.max_drop is not None and self.bound is None

    def text(self) -> str:
        """For people: what auto chose here, and why."""
        return "; ".join(t for t in (self._accuracy_text(), self._speed_text()) if t) + "."

    def _accuracy_text(self) -> str:
        b = self.bound
        if self.max_drop is None:
            return ""
        if b is None:
            return (f"the layers to keep in float for at most {self.max_drop:g} points lost are chosen when it is "
                    "built, from the int8 sibling's per-layer error")
        drop = (b.float_accuracy - b.int8_accuracy) * 100
        lost = (f"full int8 {'loses' if drop >= 0 else 'scores'} {abs(drop):.1f} points"
                f"{'' if drop >= 0 else ' above float'} on {b.images:,} validation images")
        if not b.layers:
            return f"within {b.max_drop:g} points without any layer in float ({lost})"
        if not b.met:
            return (f"no mix of int8 and float layers came within {b.max_drop:g} points ({lost}; with the "
                    f"{len(b.layers)} ranked layers in float it still loses {b.drop_points:.1f}): the fp32 sibling")
        return (f"to stay within {b.max_drop:g} points ({lost}), {len(b.layers)} layer"
                f"{'s' if len(b.layers) != 1 else ''} in float for accuracy: {', '.join(b.layers)} "
                f"({b.drop_points:.1f} points lost with them; {len(b.tried)} conversions tried in {b.seconds:.0f} s)")

    def _speed_text(self) -> str:
        if self.bound is not None and not self.bound.met:
            return ""
        us = self.p50_us
        if self.together_us is not None:
            return (f"with the layers slower in int8 here ({', '.join(self.speed)}) in float too it measured "
                    f"{self.together_us:.1f} µs; with the accuracy layers alone {us['candidate']:.1f} µs, against "
                    f"the int8 sibling's {us['int8']:.1f} µs and the fp32 sibling's {us['fp32']:.1f} µs: auto keeps "
                    "those alone" + (f", and gives the {self.fallback} sibling, faster still" if self.fallback else ""))
        if self.candidate.quant == "fp32":
            return (f"the fp32 sibling ({us['fp32']:.1f} µs, against the int8 sibling's {us['int8']:.1f} µs): by the "
                    "op profiles it beats every mix of int8 and float layers here")
        layers = ", ".join(self.speed)
        if self.speed:
            picked = f"keep {layers} in float (slower in int8 here, by the int8 and fp32 siblings' op profiles)"
        elif self.bound and self.bound.layers:
            picked = "no other layer in float (none is slower in int8 here)"
        else:
            picked = "full int8 (no layer is slower in int8 here)"
        if not self.timed:
            return f"{picked}; it is timed against both siblings when built"
        if self.fallback:
            return (f"the profiles chose to {picked.split(' (')[0]}, but it measured {us['candidate']:.1f} µs against "
                    f"the {self.fallback} sibling's {us[self.fallback]:.1f} µs: auto gives the {self.fallback} sibling")
        return (f"{picked}: {us['candidate']:.1f} µs, against the int8 sibling's {us['int8']:.1f} µs and the fp32 "
                f"sibling's {us['fp32']:.1f} µs")


def _measured_siblings(spec: VariantSpec, store: Store, here: str) -> tuple[dict[str, VariantSpec], dict[str, Latency]]:
    """The int8 and fp32 siblings of an auto spec and their latencies with op profiles on the host (SpecError
    naming the sibling that is not built and measured there yet)."""
    siblings = {"int8": spec.replace(precision="full"), "fp32": spec.replace(quant="fp32", precision="full")}
    found = {}
    for name, sib in siblings.items():
        lat = store.read_latency(sib.key(), here) if store.has("variants", sib.key()) else None
        if lat is None or not lat.get("ops"):
            raise SpecError("precision", f"auto needs the {name} sibling ({sib.label()}) built and measured on this "
                                         "host first (or name the layers to keep float)", spec.precision)
        found[name] = Latency.from_dict(lat)
    return siblings, found


def auto_precision(spec: VariantSpec, store: Store, host_id: str | None = None) -> AutoPrecision:
    """Precision "auto" made concrete for a host (default: this one). The candidate keeps in float the layers its
    int8 and fp32 siblings' op profiles, measured there, show slower in int8 (explorer.measure.precision), and for
    "auto:D" the layers its bound needs, or none ("full"). Once the candidate is timed there, a sibling that
    measured faster is chosen instead (the int8 one only where full int8 is within the bound). The same spec may so
    resolve differently on two hosts, and its key says which layers."""
    here = host_id or host.current().id
    siblings, found = _measured_siblings(spec, store, here)
    int8_key = siblings["int8"].key()
    layers = VariantRecord.from_meta(store.verify("variants", int8_key)).layers
    speed = tuple(precision.float_layers(layers, found["int8"].ops, found["fp32"].ops))
    bound = None if spec.max_drop is None else accuracy_bound.stored(store, int8_key, spec.max_drop)
    why = {"speed": speed, "bound": bound, "max_drop": spec.max_drop}
    p50 = {name: lat.p50_us for name, lat in found.items()}
    every = {lp.name for lp in layers if lp.kind in precision.FLOAT_ALL_KINDS}
    if set(speed) >= every or (bound is not None and not bound.met):  # every layer float: the fp32 sibling
        return AutoPrecision(siblings["fp32"], siblings["fp32"], p50 | {"candidate": p50["fp32"]}, **why)
    keep = [lp.name for lp in layers if lp.name in speed or (bound and lp.name in bound.layers)]
    keep += [name for name in (bound.layers if bound else ()) if name not in keep]
    candidate = spec.replace(precision="+".join(keep) or "full")
    alone = [name for name in keep if bound and name in bound.layers]
    alternative = spec.replace(precision="+".join(alone)) if alone and len(alone) < len(keep) else None
    timed = _p50(store, candidate, here)
    if timed is None:
        return AutoPrecision(candidate, candidate, p50, alternative=alternative, **why)
    p50["candidate"] = timed
    if alternative is not None:  # the profiles only predict: the islands for speed may cost more than they save
        alone_us = _p50(store, alternative, here)
        if alone_us is None:
            return AutoPrecision(candidate, candidate, p50, alternative=alternative, **why)
        p50["alternative"] = alone_us
        if alone_us < timed:
            why["together_us"], candidate, p50["candidate"] = timed, alternative, alone_us
    eligible = {n: p50[n] for n in siblings if n == "fp32" or bound is None or not bound.layers}
    fallback = precision.faster_sibling(p50["candidate"], eligible)
    return AutoPrecision(candidate, siblings[fallback] if fallback else candidate, p50, fallback,
                         alternative=alternative, **why)


def _p50(store: Store, spec: VariantSpec, here: str) -> float | None:
    found = store.read_latency(spec.key(), here) if store.has("variants", spec.key()) else None
    return None if found is None else Latency.from_dict(found).p50_us


def resolve_precision(spec: VariantSpec, store: Store, host_id: str | None = None) -> VariantSpec:
    """The variant a spec names on a host: itself, or for precision "auto" the one auto_precision keeps."""
    return auto_precision(spec, store, host_id).chosen if spec.is_auto else spec
