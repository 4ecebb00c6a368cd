"""Fit the difficulty score's head (router_plugins/difficulty_model.json) on labelled public data.

    python -m bench.difficulty_training          # fit on GSM8K and MMLU, print, write the model

What it learns: for each prompt, whether the weak model answered wrong where the strong one
answered right, from the prompt's word vectors and length (router_plugins/difficulty.py). It is
trained on RouteLLM's GSM8K and MMLU labels (Apache-2.0, bench/data/routellm/), contaminated
prompts dropped, each set weighted equally so that neither set's look decides. MT-Bench is never
read here: it is the out-of-domain test. No prompt text reaches the model file, only 67 weights,
the standardisation and the score's percentiles over the bench's reference traffic (bench/corpus.py),
which turn `routing.difficulty.share` into a threshold.

The routing-quality bench (bench/routing_quality.py) refits the same way inside each
cross-validation fold, so its in-domain figures are the method's, never the shipped file's
score on prompts it was fitted on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from bench.routing_data import LabelledSet, gsm8k, mmlu
from router_plugins.difficulty import MODEL_FILE, SCORED_CHARS, DifficultyModel, DifficultyScorer, WordVectors, features

L2 = 100.0
"""The ridge on standardised weights: strong, since a handful of dimensions carry the signal."""
TRAINING_SETS = "RouteLLM's GSM8K and MMLU labels for gpt-4-1106-preview and Mixtral-8x7B-Instruct (Apache-2.0), contaminated prompts dropped"


def feature_matrix(prompts: Sequence[str], words: WordVectors) -> np.ndarray:
    return np.array([features(p, words) for p in prompts])


def labels(data: LabelledSet) -> np.ndarray:
    """1 where the strong model's answer beats the weak one's: the requests routing should send up."""
    return np.array([1.0 if i.strong > i.weak else 0.0 for i in data.items])


def fit(x: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, l2: float = L2) -> DifficultyModel:
    """L2-regularised logistic regression by Newton's method (the intercept unpenalised)."""
    weight = np.ones(len(y)) if weight is None else weight
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(z @ beta)))
        gradient = z.T @ (weight * (p - y)) + penalty * beta
        hessian = (z * (weight * p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return DifficultyModel(tuple(beta[1:].tolist()), tuple(mean.tolist()), tuple(scale.tolist()), float(beta[0]))


def fit_sets(sets: Sequence[LabelledSet], words: WordVectors, matrices: Sequence[np.ndarray] | None = None) -> DifficultyModel:
    """Fit on several sets at once, each weighing the same in total."""
    xs = list(matrices) if matrices is not None else [feature_matrix(s.prompts, words) for s in sets]
    weight = np.concatenate([np.full(len(s.items), 1.0 / len(s.items)) for s in sets])
    weight *= len(weight) / weight.sum()
    return fit(np.vstack(xs), np.concatenate([labels(s) for s in sets]), weight)


def reference_texts() -> list[str]:
    """What the score reads of each conversation of the bench's team-traffic corpus (bench/corpus.py: written
    for this project, no evaluation set) that the score decides: no image, the user's words within max_chars."""
    from bench.corpus import conversations
    from router_config.gateway_config import ComplexityRules
    from router_plugins.conversation import Shape, read

    max_chars = ComplexityRules().max_chars
    read_all = (read(body, Shape.CHAT) for body in conversations())
    return [c.user_words(SCORED_CHARS) for c in read_all if not c.images and c.user_chars <= max_chars]


def with_reference(model: DifficultyModel, words: WordVectors, trained_on: str) -> DifficultyModel:
    """The model with its score's percentiles over the reference traffic, which `routing.difficulty.share` reads."""
    scorer = DifficultyScorer(model, words)
    scores = np.array([scorer.score(t) for t in reference_texts()])
    percentiles = np.percentile(scores, np.arange(101))
    return DifficultyModel(model.weights, model.mean, model.scale, model.intercept,
                           tuple(round(float(v), 6) for v in percentiles), trained_on)


def main(argv: Sequence[str] | None = None) -> int:
    words = WordVectors.load()
    sets = (gsm8k(), mmlu())
    model = with_reference(fit_sets(sets, words), words, TRAINING_SETS)
    MODEL_FILE.write_text(model.to_json() + "\n")
    print(f"fitted on {sum(len(s.items) for s in sets)} prompts; wrote {MODEL_FILE}")
    print("share -> threshold: " + ", ".join(f"{s:.0%} {model.threshold_for_share(s):.3f}" for s in (0.1, 0.2, 0.3, 0.5)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
