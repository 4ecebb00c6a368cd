"""A request's difficulty: how likely it is to need the strong model, read from the user's own words.

The score is a logistic model over what a request is about and how much it says:

- **what it is about**: the mean of its words' vectors. Each word of all-MiniLM-L6-v2's vocabulary
  has a vector, that model's embedding of the word alone, reduced to 64 dimensions
  (bench/build_word_vectors.py made `difficulty_words.npz`). Words close in meaning sit close
  together, so what the model learnt of one topic (proofs, code, a probability) carries to words
  it never saw in training.
- **how much it says**: the log of its length, in characters and in words.

The head (`difficulty_model.json`) was fitted on labelled public data by
`python -m bench.difficulty_training`: which requests a weak model got wrong and a strong one
right. It holds 67 numbers; no prompt, phrase or word list from any evaluation set.

Scoring folds the head into one number per word once, at load: a request then costs a regular
expression over its first `SCORED_CHARS` characters and a dictionary lookup per word, with no
network, no GPU and no model run.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

SCORED_CHARS = 2000
"""How much of the user's words the score reads: what a request asks sits at its start."""
_HERE = Path(__file__).parent
WORDS_FILE = _HERE / "difficulty_words.npz"
MODEL_FILE = _HERE / "difficulty_model.json"
_WORD = re.compile(r"[a-z]+")
LENGTH_FEATURES = ("log_chars", "log_words")


@dataclass(frozen=True)
class WordVectors:
    index: dict[str, int]
    vectors: np.ndarray
    """One row per word, float64."""

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def load(cls, path: Path = WORDS_FILE) -> WordVectors:
        with np.load(path) as data:
            words = [str(w) for w in data["words"]]
            vectors = data["vectors"].astype(np.float64) * data["scale"].astype(np.float64)
        return cls({w: i for i, w in enumerate(words)}, vectors)


def features(text: str, words: WordVectors) -> np.ndarray:
    """The feature vector the head reads: the mean word vector, then LENGTH_FEATURES (training reads these)."""
    head = text[:SCORED_CHARS]
    tokens = _WORD.findall(head.lower())
    rows = [i for i in (words.index.get(t) for t in tokens) if i is not None]
    mean = words.vectors[rows].mean(axis=0) if rows else np.zeros(words.dimensions)
    return np.concatenate([mean, [math.log1p(len(head)), math.log1p(len(tokens))]])


@dataclass(frozen=True)
class DifficultyModel:
    """A logistic head over standardised features: sigmoid(intercept + weights . (x - mean) / scale)."""

    weights: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    intercept: float
    reference_quantiles: tuple[float, ...] = ()
    """The score at each percentile 0..100 over reference team traffic (bench/corpus.py): `share` reads it."""
    trained_on: str = ""

    def raw(self, x: np.ndarray) -> float:
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        return float(self.intercept + z @ np.asarray(self.weights))

    def threshold_for_share(self, share: float) -> float:
        """The threshold that sends about `share` of the reference traffic the score decides to the strong model."""
        q = self.reference_quantiles
        position = (1.0 - share) * (len(q) - 1)
        low = int(math.floor(position))
        high = min(low + 1, len(q) - 1)
        return q[low] + (q[high] - q[low]) * (position - low)

    def to_json(self) -> str:
        return json.dumps({"trained_on": self.trained_on, "intercept": self.intercept, "weights": self.weights,
                           "mean": self.mean, "scale": self.scale, "reference_quantiles": self.reference_quantiles}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> DifficultyModel:
        raw = json.loads(text)
        return cls(tuple(raw["weights"]), tuple(raw["mean"]), tuple(raw["scale"]), float(raw["intercept"]),
                   tuple(raw.get("reference_quantiles", ())), str(raw.get("trained_on", "")))


class DifficultyScorer:
    """Scores text in a few microseconds per hundred words: the head folded into one number per word."""

    def __init__(self, model: DifficultyModel, words: WordVectors):
        self.model = model
        d = words.dimensions
        weights = np.asarray(model.weights)
        mean = np.asarray(model.mean)
        scale = np.asarray(model.scale)
        per_dimension = weights[:d] / scale[:d]
        word_scores = words.vectors @ per_dimension
        self._word_score = dict(zip(words.index, word_scores.tolist()))
        # What a request with no known word scores: the zero vector, standardised like any other.
        self._base = model.intercept - float(mean[:d] @ per_dimension)
        self._chars, self._words = (float(w / s) for w, s in zip(weights[d:], scale[d:]))
        self._length_offset = float(mean[d:] @ (weights[d:] / scale[d:]))

    def score(self, text: str, limit: int = SCORED_CHARS) -> float:
        """The difficulty of `text`'s first `limit` characters, in (0, 1): higher is likelier to need the strong model."""
        head = text[:limit]
        tokens = _WORD.findall(head.lower())
        lookup = self._word_score.get
        found = [s for s in map(lookup, tokens) if s is not None]
        words_part = sum(found) / len(found) if found else 0.0
        raw = (self._base + words_part + self._chars * math.log1p(len(head)) + self._words * math.log1p(len(tokens))
               - self._length_offset)
        return 1.0 / (1.0 + math.exp(-raw)) if raw > -700 else 0.0


@cache
def shipped_scorer() -> DifficultyScorer:
    """The scorer the repository ships (loaded once per process)."""
    return DifficultyScorer(DifficultyModel.from_json(MODEL_FILE.read_text()), WordVectors.load())
