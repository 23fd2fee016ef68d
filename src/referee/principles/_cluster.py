"""Merging near-duplicate principles: TF-IDF vectors, average-linkage clustering on cosine distance
(scikit-learn), one representative per cluster."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._prompts import PREFIX


@dataclass
class Cluster:
    """A merged principle: its representative text, the proposals it stands for, how many, and
    the facet it was proposed on (``None``: the whole texts)."""

    text: str
    members: list[str]
    count: int
    facet: str | None = None


def merge_principles(proposals: Sequence[str], *, distance: float = 0.6, keep: int | None = None) -> list[Cluster]:
    """Near-duplicate proposals merged, the largest clusters first.

    The representative of a cluster is its most frequent text, or (all distinct) the member
    closest on average to the others. The shared "Select the response that" prefix is left out of
    the vectors, so it does not make every pair look alike.

    Args:
        proposals: principle texts, with repeats (a repeat is support).
        distance: cosine distance below which clusters merge (average linkage).
        keep: at most this many clusters (the largest; ties by first appearance).
    """
    try:
        from sklearn.cluster import AgglomerativeClustering
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError:
        raise InputError("referee principles needs scikit-learn: pip install -e '.[principles]'",
                         field="principles") from None
    if not proposals:
        return []
    texts = list(proposals)
    distinct = list(dict.fromkeys(texts))
    counts = Counter(texts)
    if len(distinct) == 1:
        return [Cluster(distinct[0], texts, len(texts))]
    body = [t[len(PREFIX):] if t.startswith(PREFIX) else t for t in distinct]
    vec = TfidfVectorizer(ngram_range=(1, 2), stop_words="english", sublinear_tf=True).fit_transform(body)
    if vec.shape[1] == 0:  # nothing but stop words: each text its own cluster
        labels = np.arange(len(distinct))
    else:
        labels = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine",
                                         linkage="average").fit_predict(vec.toarray())
    sims = (vec @ vec.T).toarray()
    clusters = []
    for lab in dict.fromkeys(labels):
        idx = [i for i in range(len(distinct)) if labels[i] == lab]
        top = max(counts[distinct[i]] for i in idx)
        frequent = [i for i in idx if counts[distinct[i]] == top]
        rep = frequent[0] if len(frequent) == 1 else max(frequent, key=lambda i: (sims[i, idx].mean(), -i))
        members = [t for t in texts if t in {distinct[i] for i in idx}]
        clusters.append(Cluster(distinct[rep], members, len(members)))
    order = sorted(range(len(clusters)), key=lambda k: -clusters[k].count)  # stable: first appearance wins ties
    out = [clusters[k] for k in order]
    return out if keep is None else out[:keep]
