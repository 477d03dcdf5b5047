"""Precision "auto" made concrete on a host: the layers its int8 and fp32 siblings' op profiles, measured there,
show slower in int8 are kept in float, and a sibling that measures faster than that candidate is kept instead.

    >>> auto = auto_precision.auto_precision(spec.replace(precision="auto"), store)
    >>> auto.chosen, auto.text()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from explorer.measure import host, precision
from explorer.record import Latency, VariantRecord
from explorer.spec import PRECISION_AUTO, SpecError, VariantSpec
from explorer.store.cache import Store


@dataclass(frozen=True)
class AutoPrecision:
    """Precision "auto" on one host: the candidate its siblings' op profiles choose, its p50 once timed, and the
    variant kept: the candidate, or the faster sibling where that measured faster (fallback names which)."""

    candidate: VariantSpec
    chosen: VariantSpec
    p50_us: Mapping[str, float]  # "candidate" (once timed), "int8", "fp32"
    fallback: str | None = None

    @property
    def timed(self) -> bool:
        return "candidate" in self.p50_us

    def text(self) -> str:
        """For people: what auto chose here, and why."""
        us = self.p50_us
        if self.candidate.quant == "fp32":
            return (f"the fp32 sibling ({us['fp32']:.1f} µs, against the int8 sibling's {us['int8']:.1f} µs): by the "
                    "op profiles it beats every mix of int8 and float layers here")
        layers = self.candidate.precision.replace("+", ", ")
        picked = ("full int8 (no layer is slower in int8 here)" if self.candidate.precision == "full"
                  else f"keep {layers} in float (slower in int8 here, by the int8 and fp32 siblings' op profiles)")
        if not self.timed:
            return f"{picked}; it is timed against both siblings when built"
        if self.fallback:
            return (f"the profiles chose to {picked.split(' (')[0]}, but it measured {us['candidate']:.1f} µs against "
                    f"the {self.fallback} sibling's {us[self.fallback]:.1f} µs: auto gives the {self.fallback} sibling")
        return (f"{picked}: {us['candidate']:.1f} µs, against the int8 sibling's {us['int8']:.1f} µs and the fp32 "
                f"sibling's {us['fp32']:.1f} µs")


def auto_precision(spec: VariantSpec, store: Store, host_id: str | None = None) -> AutoPrecision:
    """Precision "auto" made concrete for a host (default: this one). The candidate keeps in float the layers its
    int8 and fp32 siblings' op profiles, measured there, show slower in int8 (explorer.measure.precision), or none
    ("full"). Once the candidate is timed there, a sibling that measured faster is chosen instead. The same spec
    may so resolve differently on two hosts, and its key says which layers."""
    here = host_id or host.current().id
    siblings = {"int8": spec.replace(precision="full"), "fp32": spec.replace(quant="fp32", precision="full")}
    found = {}
    for name, sib in siblings.items():
        lat = store.read_latency(sib.key(), here) if store.has("variants", sib.key()) else None
        if lat is None or not lat.get("ops"):
            raise SpecError("precision", f"auto needs the {name} sibling ({sib.label()}) built and measured on this "
                                         "host first (or name the layers to keep float)", spec.precision)
        found[name] = Latency.from_dict(lat)
    layers = VariantRecord.from_meta(store.verify("variants", siblings["int8"].key())).layers
    chosen = precision.float_layers(layers, found["int8"].ops, found["fp32"].ops)
    p50 = {name: lat.p50_us for name, lat in found.items()}
    if set(chosen) >= {lp.name for lp in layers if lp.kind in precision.FLOAT_ALL_KINDS}:  # every layer float:
        return AutoPrecision(siblings["fp32"], siblings["fp32"], p50 | {"candidate": p50["fp32"]})  # the fp32 one
    candidate = spec.replace(precision="+".join(chosen) or "full")
    timed = store.read_latency(candidate.key(), here) if store.has("variants", candidate.key()) else None
    if timed is None:
        return AutoPrecision(candidate, candidate, p50)
    p50["candidate"] = Latency.from_dict(timed).p50_us
    fallback = precision.faster_sibling(p50["candidate"], {n: p50[n] for n in siblings})
    return AutoPrecision(candidate, siblings[fallback] if fallback else candidate, p50, fallback)


def resolve_precision(spec: VariantSpec, store: Store, host_id: str | None = None) -> VariantSpec:
    """The variant a spec names on a host: itself, or for precision "auto" the one auto_precision keeps."""
    return spec if spec.precision != PRECISION_AUTO else auto_precision(spec, store, host_id).chosen
