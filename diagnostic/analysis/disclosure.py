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
then, while the audit still recomputes a sensitive count — a small set, a small
difference, or any masked count whatever its size (« total − other rows ») — masks
the smallest published cell that the recomputation uses (secondary suppression).
:func:`audit` is the same test, run on the final document; :func:`check`
refuses to publish (code 21) when it finds anything.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
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
        # A location printing one count (not a share or a change): what it counts must stay unknown once masked.
        by_location: dict[Hashable, list[frozenset]] = {}
        for c in cells:
            by_location.setdefault(c.location, []).append(c.records)
        self.counts = {loc: sets[0] for loc, sets in by_location.items() if len(set(sets)) == 1 and sets[0]}

    def solve(self, masked: set) -> tuple[list[int], list[Cell], np.ndarray]:
        """Sensitive sets the cells outside ``masked`` determine exactly, those cells and the weights used.

        Sensitive: every small set and small difference of nested sets, and the set of
        every masked count whatever its size (a masked 12 must not be « total − others »).
        One least-squares solve for every sensitive set at once: a set is recomputable
        when its membership vector is a combination of published ones.
        """
        published = sorted({self.index[c.records] for c in self.cells if c.location not in masked})
        protected = sorted({self.index[self.counts[loc]] for loc in masked if loc in self.counts})
        self.found_names = self.sensitive_names + [f"case masquée de {len(self.sets[i])} enregistrement(s)"
                                                   for i in protected]
        if not (len(self.sensitive) or protected) or not published:
            return [], [], np.zeros((0, 0))
        # Projection on the span of the published vectors: coef = G⁺ A s, residual² = |s|² − (A s)·coef.
        values, vectors = np.linalg.eigh(self.gram[np.ix_(published, published)])
        keep = values > _EPS * max(1.0, values.max())
        inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
        cross = np.hstack([self.cross[published], self.gram[np.ix_(published, protected)]])
        norms = np.concatenate([self.norms, np.diag(self.gram)[protected]])
        coef = inverse @ cross
        residual = norms - (cross * coef).sum(axis=0)
        found = [int(i) for i in np.flatnonzero(residual < 1e-6)]
        rows = {s: i for i, s in enumerate(published)}
        cells = [c for c in self.cells if c.location not in masked]
        weights = np.array([[coef[rows[self.index[c.records]], j] for j in found] for c in cells]).reshape(len(cells), -1)
        return found, cells, weights


def protect(cells: list[Cell], threshold: int, hidden: Iterable[frozenset] = (),
            close: Callable[[set], set] | None = None) -> set:
    """The locations to mask so that no set of 1 to ``threshold`` − 1 records, and no masked count, can be recomputed.

    ``hidden`` adds sets that are never published but must stay secret (map cells left out).
    ``close`` adds what masking implies in the document (a share masked with its count, a key
    figure with the table row that prints it); it runs before every audit. For each
    recomputable set, the smallest published cell its recomputation uses is masked, then the
    audit runs again, until nothing is recomputable.
    """
    system = _System(cells, threshold, hidden)
    masked = {c.location for c in cells if 0 < len(c.records) < threshold}
    while True:
        if close is not None:
            masked = close(masked)
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
    found = system.solve(set(masked))[0]
    return [system.found_names[i] for i in found]


def check(cells: list[Cell], masked: set, threshold: int, hidden: Iterable[frozenset] = ()) -> None:
    """Refuse (code 21) a document from which a masked count can be recomputed."""
    leaks = audit(cells, masked, threshold, hidden)
    if leaks:
        raise ConfidentialityError(
            f"{len(leaks)} petit(s) effectif(s) masqué(s) resteraient calculables à partir des chiffres publiés "
            f"({', '.join(leaks[:3])}).",
            hint="signalez ce cas : le document n'a pas été écrit.",
        )
