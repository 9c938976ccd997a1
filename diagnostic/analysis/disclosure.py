"""Statistical disclosure control for published counts: suppression and an audit that tries to break it.

Every figure a document publishes is described as one or more :class:`Cell`: the
set of records it counts and the place it is printed (a table cell, a key
figure, a sentence). A share publishes two cells (its numerator and its base),
a change two (both periods). From these sets alone, the audit does what a
careful reader would: it writes every published figure as a linear equation on
the unknown counts of the smallest groups of records the sets distinguish
(« atoms ») and asks whether a sensitive count — any set of 1 to threshold − 1
records, including the difference between two published nested sets
(« signalements 6, résolus 5 ») — is a linear combination of what is published
(row, column and cross-table sums and differences). If it is, the count can be
recomputed exactly, whatever the tables it was spread across.

:func:`protect` masks every place publishing a small set (primary suppression),
then, while the audit still recomputes a sensitive count, masks the smallest
published cell that the recomputation uses (secondary suppression).
:func:`audit` is the same test, run on the final document; :func:`check`
refuses to publish (code 21) when it finds anything.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from diagnostic.errors import ConfidentialityError

_EPS = 1e-7


@dataclass(frozen=True)
class Cell:
    """A published count: where it is printed and which records it counts."""

    location: Hashable
    records: frozenset


def _atoms(sets: list[frozenset]) -> tuple[np.ndarray, np.ndarray]:
    """Membership matrix (sets × atoms) and atom sizes; atoms are records with the same memberships."""
    memberships: dict[Hashable, list[int]] = {}
    for i, s in enumerate(sets):
        for record in s:
            memberships.setdefault(record, []).append(i)
    signatures: dict[tuple[int, ...], int] = {}
    for ids in memberships.values():
        key = tuple(ids)
        signatures[key] = signatures.get(key, 0) + 1
    matrix = np.zeros((len(sets), len(signatures)))
    for j, ids in enumerate(signatures):
        matrix[list(ids), j] = 1.0
    return matrix, np.array(list(signatures.values()), dtype=float)


class _System:
    """The published cells as equations over atoms, and the sensitive sets to protect."""

    def __init__(self, cells: list[Cell], threshold: int, hidden: Iterable[frozenset] = ()) -> None:
        self.cells = cells
        self.sets = sorted({c.records for c in cells} | set(hidden), key=lambda s: (len(s), sorted(map(str, s))))
        self.index = {s: i for i, s in enumerate(self.sets)}
        self.matrix, self.weights = _atoms(self.sets)
        sizes = self.matrix @ self.weights
        small = (sizes > 0) & (sizes < threshold)
        rows = [self.matrix[i] for i in np.flatnonzero(small)]
        names = [f"{len(self.sets[i])} enregistrement(s)" for i in np.flatnonzero(small)]
        # Differences of nested sets: Q ⊂ P leaves P \ Q, sensitive when small.
        m = self.matrix.astype(bool)
        for q in range(len(self.sets)):
            inside = ~(m[q] & ~m).any(axis=1)  # sets P containing Q
            inside[q] = False
            for p in np.flatnonzero(inside):
                diff = self.matrix[p] - self.matrix[q]
                n = diff @ self.weights
                if 0 < n < threshold:
                    rows.append(diff)
                    names.append(f"{int(n)} enregistrement(s) par différence")
        self.sensitive = np.array(rows) if rows else np.zeros((0, self.matrix.shape[1]))
        self.sensitive_names = names
        # Everything the solve needs, in the small space of sets rather than records.
        self.gram = self.matrix @ self.matrix.T
        self.cross = self.matrix @ self.sensitive.T
        self.norms = (self.sensitive ** 2).sum(axis=1)

    def solve(self, masked: set) -> tuple[list[int], list[Cell], np.ndarray]:
        """Sensitive sets the cells outside ``masked`` determine exactly, those cells and the weights used.

        One least-squares solve for every sensitive set at once: a set is
        recomputable when its membership vector is a combination of published ones.
        """
        published = sorted({self.index[c.records] for c in self.cells if c.location not in masked})
        if not len(self.sensitive) or not published:
            return [], [], np.zeros((0, 0))
        # Projection on the span of the published vectors: coef = G⁺ A s, residual² = |s|² − (A s)·coef.
        values, vectors = np.linalg.eigh(self.gram[np.ix_(published, published)])
        keep = values > _EPS * max(1.0, values.max())
        inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
        cross = self.cross[published]
        coef = inverse @ cross
        residual = self.norms - (cross * coef).sum(axis=0)
        found = [int(i) for i in np.flatnonzero(residual < 1e-6)]
        rows = {s: i for i, s in enumerate(published)}
        cells = [c for c in self.cells if c.location not in masked]
        weights = np.array([[coef[rows[self.index[c.records]], j] for j in found] for c in cells]).reshape(len(cells), -1)
        return found, cells, weights


def protect(cells: list[Cell], threshold: int, hidden: Iterable[frozenset] = ()) -> set:
    """The locations to mask so that no set of 1 to ``threshold`` − 1 records can be recomputed.

    ``hidden`` adds sets that are never published but must stay secret (map cells left out).
    For each recomputable set, the smallest published cell its recomputation uses is masked,
    then the audit runs again, until nothing is recomputable.
    """
    system = _System(cells, threshold, hidden)
    masked = {c.location for c in cells if 0 < len(c.records) < threshold}
    while True:
        found, published, weights = system.solve(masked)
        if not found:
            return masked
        for j in range(len(found)):
            used = [c for c, w in zip(published, weights[:, j]) if abs(w) > 1e-9]
            if not any(c.location in masked for c in used):
                masked.add(min(used, key=lambda c: (len(c.records), str(c.location))).location)


def audit(cells: list[Cell], masked: set, threshold: int, hidden: Iterable[frozenset] = ()) -> list[str]:
    """What a reader can recompute: one French line per sensitive count the published cells determine."""
    system = _System(cells, threshold, hidden)
    return [system.sensitive_names[i] for i in system.solve(set(masked))[0]]


def check(cells: list[Cell], masked: set, threshold: int, hidden: Iterable[frozenset] = ()) -> None:
    """Refuse (code 21) a document from which a masked count can be recomputed."""
    leaks = audit(cells, masked, threshold, hidden)
    if leaks:
        raise ConfidentialityError(
            f"{len(leaks)} petit(s) effectif(s) masqué(s) resteraient calculables à partir des chiffres publiés "
            f"({', '.join(leaks[:3])}).",
            hint="signalez ce cas : le document n'a pas été écrit.",
        )
