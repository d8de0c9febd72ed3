"""Text augmentation of the train split, the one place `augment.*` acts.

- `eda` (Wei & Zou, 2019, for space-separated languages): each copy of a text gets
  `max(1, round(p * words))` random operations, each a swap of two words, a deletion of a word (never
  the last one) or an insertion of a word from the same text at a random place. EDA's fourth
  operation, synonym replacement, needs WordNet, which ecomlab does not ship; insertion takes a word
  of the text itself instead of a synonym.
- `char` (for Chinese, where there are no spaces; any language): `max(1, round(p * characters))`
  operations, each a swap of two neighbouring characters or a deletion of one.

`augment.copies` augmented copies of every train text are added after the originals, with the same
labels (and features). Val and test are never augmented. The randomness is a pure function of the
run's `seed`, the copy number and the text's position, so a run reproduces; the token cache keys
include the augmentation.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field

from experiments.core.config_group import Group
from experiments.core.knob import Knob


class AugmentConfig(Group):
    """Augmentation of the train split (EDA for English, character edits for Chinese)."""

    method: Literal["none", "eda", "char"] = Field(
        "none", description="eda: swap/delete/insert words; char: swap/delete characters; none: off."
    )
    p: float = Field(
        0.1, gt=0, le=0.5, description="Share of a text's words (eda) or characters (char) edited."
    )
    copies: int = Field(
        1, ge=1, le=8, description="Augmented copies of every train text, added to the originals."
    )


def _refuse(cfg: Any, spec: Any) -> Iterator[str]:
    method = cfg.augment.method
    if method != "none" and not spec.text_encoder:
        yield f"augment.method: task {cfg.task!r} has no text encoder; its rows are not texts to augment; use none"
    if method == "eda" and getattr(type(cfg.data), "language", None) == "zh":
        yield (
            f"augment.method: eda edits space-separated words, and {cfg.data.dataset!r} is Chinese (no spaces); "
            "use char"
        )


# Its hook is on the data: `experiments.config.registry.build_datamodule` sets an `Augmentation`.
KNOB = Knob("augment", AugmentConfig, "Augmentation of the train split.", refuse=_refuse)


def eda(text: str, p: float, rng: random.Random) -> str:
    words = text.split()
    if len(words) < 2:
        return text
    for _ in range(max(1, round(p * len(words)))):
        op = rng.randrange(3)
        if op == 0:
            i, j = rng.randrange(len(words)), rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        elif op == 1 and len(words) > 1:
            del words[rng.randrange(len(words))]
        else:
            words.insert(rng.randrange(len(words) + 1), words[rng.randrange(len(words))])
    return " ".join(words)


def char(text: str, p: float, rng: random.Random) -> str:
    chars = list(text)
    if len(chars) < 2:
        return text
    for _ in range(max(1, round(p * len(chars)))):
        if rng.randrange(2) == 0 and len(chars) > 1:
            i = rng.randrange(len(chars) - 1)
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif len(chars) > 1:
            del chars[rng.randrange(len(chars))]
    return "".join(chars)


METHODS: dict[str, Callable[[str, float, random.Random], str]] = {"eda": eda, "char": char}


@dataclass(frozen=True)
class Augmentation:
    """What a DataModule applies to its train split (`registry.build_datamodule` sets it)."""

    method: str
    p: float
    copies: int
    seed: int

    def options(self) -> dict[str, Any]:
        return asdict(self)

    def copies_of(self, texts: list[str]) -> list[str]:
        """`copies` augmented versions of `texts`, copy after copy (len(texts) * copies strings)."""
        fn = METHODS[self.method]
        return [
            fn(t, self.p, random.Random(f"ecomlab-augment:{self.seed}:{c}:{i}"))
            for c in range(self.copies)
            for i, t in enumerate(texts)
        ]
