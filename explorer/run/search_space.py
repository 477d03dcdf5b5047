"""The space a search explores: the values to try per spec field, and the trials it guides (starts first, then a
trained trial's siblings, cheapest first; a shorter variant where the time left is short).

    >>> space = Space({"depth": [1, 2, 3], "quant": ["fp32", "int8"]})
    >>> space.starts(), space.spec(params)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from explorer.spec import AFTER_BASE, FAMILY_FIELDS, SpecError, VariantSpec


@dataclass(frozen=True)
class Space:
    """The values to try for each spec field (one value: fixed); every other field is base's."""

    choices: Mapping[str, Sequence[Any]]
    base: VariantSpec = VariantSpec()

    def __post_init__(self) -> None:
        for name, values in self.choices.items():
            if not values:
                raise SpecError(name, "needs at least one value to try", values)
            for value in values:
                self.base.replace(**{name: value})  # SpecError names the field and the range

    @property
    def size(self) -> int:
        """How many distinct variants the space holds."""
        return math.prod(len(set(values)) for values in self.choices.values())

    def untried(self, tried: set[str], rng: np.random.Generator, limit: int = 100_000) -> dict[str, Any] | None:
        """The values of a variant not in `tried` (keys), picked at random; None if all are tried, or if the
        space is too large to list (where a repeat is rare anyway)."""
        if self.size > limit:
            return None
        names = list(self.choices)
        combos = list(itertools.product(*(list(dict.fromkeys(self.choices[n])) for n in names)))
        for i in rng.permutation(len(combos)):
            values = dict(zip(names, combos[i]))
            if self.spec(values).key() not in tried:
                return {n: v for n, v in values.items() if len(set(self.choices[n])) > 1}
        return None

    def siblings(self, params: Mapping[str, Any], tried: set[str]) -> list[dict[str, Any]]:
        """The untried variants of the space that share this trial's base stage (they differ only in what is
        applied to a trained base: spec.AFTER_BASE), the cheapest first: once a trial has trained its base, those
        that share its fine-tuned stage too cost a conversion each, the others a fine-tune (pruning channels,
        QAT), far less than a new base. So they are tried next: the search reuses what it trains."""
        spec = self.spec(params)
        names = [n for n in params if n in AFTER_BASE]
        out = []
        for values in itertools.product(*(list(dict.fromkeys(self.choices[n])) for n in names)):
            other = {**params, **dict(zip(names, values))}
            sibling = self.spec(other)
            if sibling.key() not in tried and sibling.key() != spec.key() and sibling.base_key() == spec.base_key():
                out.append(other)
        return sorted(out, key=lambda o: self.fine_tunes(o, params))

    def next_sibling(self, siblings: Sequence[Mapping[str, Any]], front_bases: set[str]) -> int:
        """Which of the queued siblings (cheapest first) to try next: the first whose base has a variant on the
        front, else the first. A sibling of a dominated base seldom reaches the front: a conversion keeps its
        accuracy, a fine-tune lowers it."""
        return next((i for i, p in enumerate(siblings) if self.spec(p).base_key() in front_bases), 0)

    def fine_tunes(self, sibling: Mapping[str, Any], trained: Mapping[str, Any]) -> int:
        """Fine-tune stages a sibling of a trained trial still trains (0: it only converts)."""
        spec, done = self.spec(sibling), self.spec(trained)
        return int(spec.is_tuned and spec.tuned_key() != done.tuned_key()) + int("qat" in spec.fine_tunes())

    def shorter(self, params: Mapping[str, Any], tried: set[str], fits: Callable[[VariantSpec], bool]
                ) -> dict[str, Any] | None:
        """The trial with fewer epochs (the most of the space's values that fit), untried; None if the space does
        not search epochs or none fits."""
        current = self.spec(params).epochs
        for epochs in sorted({e for e in self.choices.get("epochs", ()) if e < current}, reverse=True):
            other = {**params, "epochs": epochs}
            if self.spec(other).key() not in tried and fits(self.spec(other)):
                return other
        return None

    def spec(self, params: Mapping[str, Any]) -> VariantSpec:
        """The variant of a trial's params (the fields with several values) and the fixed fields."""
        return self.base.replace(**({name: values[0] for name, values in self.choices.items()} | dict(params)))

    def starts(self) -> list[dict[str, Any]]:
        """A new study's first trials: the base variant, the base network at the space's least depth and width
        trained for the most epochs of the space (the fast end of the front: a small network costs little per
        epoch, and it is still learning after 10 of them), and the base with the accuracy levers of the shipped
        grid (explorer.run.grid.LEVER_PAIRS), where the space holds their values: a search begins from what is
        known to work, and the sampler explores from there. The base first: from one size timed, another is
        predicted in proportion to its work, which errs long for a larger network (the fast end first left the
        base of a 2-minute search untrained) and short for a smaller one (which the deadline's watch catches at
        its first epoch); the lever recipe is then predicted from two sizes."""
        from explorer.run import grid

        searched = [name for name, values in self.choices.items() if len(values) > 1]
        before, after = grid.LEVER_PAIRS["default depth 2"]
        levers = {f.name: getattr(after, f.name) for f in dataclasses.fields(after)
                  if getattr(after, f.name) != getattr(before, f.name)
                  and not (self.base.model and f.name in FAMILY_FIELDS)}  # another network takes the training ones
        fast = {name: min(self.choices[name]) for name in ("depth", "width")
                if name in searched and min(self.choices[name]) < getattr(self.base, name)}  # a smaller network
        if fast and "epochs" in searched:
            fast["epochs"] = max(self.choices["epochs"])
        out = []
        for known in (self.base, self.base.replace(**fast), self.base.replace(**levers)):
            params = {name: getattr(known, name) for name in searched}
            if all(params[n] in self.choices[n] for n in searched) and params not in out:
                out.append(params)
        return out

    def suggest(self, trial) -> VariantSpec:
        return self.spec({name: trial.suggest_categorical(name, list(values))
                          for name, values in self.choices.items() if len(values) > 1})
