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

    def name(self, key: tuple[str, int]) -> str:
        """A sensitive count in French: a small set or difference, or a masked count."""
        kind, i = key
        return self.sensitive_names[i] if kind == "petit" else f"case masquée de {len(self.sets[i])} enregistrement(s)"

    def public(self, fixed: set) -> set[tuple[str, int]]:
        """The sensitive counts that ``fixed`` locations (an earlier document) determine on their own: public already.

        Earlier documents never change, so this is asked once, over every count a
        location may print.
        """
        if not fixed:
            return set()
        every = {self.index[s] for s in self.counts.values()}
        return set(self.solve(set(), every, hide={c.location for c in self.cells} - fixed)[0])

    def protected(self, masked: set) -> list[int]:
        """The sets of the masked locations printing one count: they must stay unknown, whatever their size."""
        return sorted({self.index[self.counts[loc]] for loc in masked if loc in self.counts})

    def solve(self, masked: set, protected: Iterable[int] = (), hide: set = frozenset()
              ) -> tuple[list[tuple[str, int]], list[Cell], np.ndarray]:
        """Sensitive counts the cells outside ``masked`` determine exactly, those cells and the weights used.

        Sensitive: every small set and small difference of nested sets (« petit »), and the
        ``protected`` sets (« masque »: masked counts, whatever their size — a masked 12 must
        not be « total − others »). One least-squares solve for every sensitive count at
        once: a count is recomputable when its membership vector is a combination of
        published ones. ``hide``: locations left out of the published ones without being
        protected (to ask what an earlier document tells on its own).
        """
        protected = sorted(protected)
        keys = [("petit", i) for i in range(len(self.sensitive))] + [("masque", i) for i in protected]
        shown = [c for c in self.cells if c.location not in masked and c.location not in hide]
        published = sorted({self.index[c.records] for c in shown})
        if not keys or not published:
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
        weights = np.array([[coef[rows[self.index[c.records]], j] for j in found] for c in shown]).reshape(len(shown), -1)
        return [keys[j] for j in found], shown, weights


def protect(cells: list[Cell], threshold: int, hidden: Iterable[frozenset] = (),
            close: Callable[[set], set] | None = None, fixed: Iterable[Hashable] = ()) -> set:
    """The locations to mask so that no set of 1 to ``threshold`` − 1 records, and no masked count, can be recomputed.

    ``hidden`` adds sets that are never published but must stay secret (map cells left out).
    ``close`` adds what masking implies in the document (a share masked with its count, a key
    figure with the table row that prints it); it runs before every audit. For each
    recomputable count, the smallest published cell its recomputation uses is masked, then the
    audit runs again, until nothing is recomputable. ``fixed`` locations (an earlier document)
    are never masked, and what they tell on their own is public already; when only they could
    close a route, the masking stops there and :func:`check` refuses the document.
    """
    fixed = set(fixed)
    system = _System(cells, threshold, hidden)
    known = system.public(fixed)
    masked = {c.location for c in cells if 0 < len(c.records) < threshold and c.location not in fixed}
    while True:
        if close is not None:
            masked = close(masked)
        found, published, weights = system.solve(masked, system.protected(masked))
        added = False
        for j, key in enumerate(found):
            if key in known:
                continue
            used = [c for c, w in zip(published, weights[:, j]) if abs(w) > 1e-9 and c.location not in fixed]
            if used and not any(c.location in masked for c in used):
                masked.add(min(used, key=lambda c: (len(c.records), str(c.location))).location)
                added = True
        if not added:
            return masked


def audit(cells: list[Cell], masked: set, threshold: int, hidden: Iterable[frozenset] = (),
          fixed: Iterable[Hashable] = ()) -> list[str]:
    """What a reader can recompute: one French line per sensitive count the published cells determine.

    Counts that the ``fixed`` locations (earlier documents) determine on their own are not
    this document's doing and are left out.
    """
    system = _System(cells, threshold, hidden)
    masked = set(masked)
    known = system.public(set(fixed))
    return [system.name(key) for key in system.solve(masked, system.protected(masked))[0] if key not in known]


def check(cells: list[Cell], masked: set, threshold: int, hidden: Iterable[frozenset] = (),
          fixed: Iterable[Hashable] = ()) -> None:
    """Refuse (code 21) a document from which a masked count can be recomputed."""
    leaks = audit(cells, masked, threshold, hidden, fixed)
    if leaks:
        raise ConfidentialityError(
            f"{len(leaks)} petit(s) effectif(s) masqué(s) resteraient calculables à partir des chiffres publiés "
            f"({', '.join(leaks[:3])}).",
            hint="signalez ce cas : le document n'a pas été écrit.",
        )
