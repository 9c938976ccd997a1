"""What the commune map draws, as one value: built once by the caller, drawn by the folium map and its PNG twin."""

from __future__ import annotations

from dataclasses import dataclass, replace

import geopandas as gpd
import pandas as pd

from diagnostic.options import BAND_M
from diagnostic.report.maps import style as st
from diagnostic.report.maps.geometry import lambert93


@dataclass(frozen=True, eq=False)
class MapLayers:
    """The layers of one commune's map and how its QPVs are coloured.

    ``commune``, ``qpv`` and ``services`` are always drawn; ``context`` (the
    surrounding communes), ``actors`` (geolocated partners) and ``needs`` (QPVs
    with a strong unmet need get a red outline) when given. The QPVs are
    coloured by the ``indicator`` column in classes (``scheme``, ``k``), under
    ``indicator_label``; ``band_m`` is the band drawn around them.
    """

    commune: gpd.GeoDataFrame
    qpv: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    indicator: str | None = None
    indicator_label: str | None = None
    needs: pd.DataFrame | None = None
    band_m: float = BAND_M
    context: gpd.GeoDataFrame | None = None
    actors: gpd.GeoDataFrame | None = None
    scheme: str = "natural_breaks"
    k: int = 5

    @property
    def label(self) -> str | None:
        """The indicator's name as the map shows it."""
        return self.indicator_label or self.indicator

    def projected(self) -> MapLayers:
        """The same layers in Lambert-93 with a fresh index; the commune left out of its context, empty layers as none."""
        commune = lambert93(self.commune, "commune")
        context = actors = None
        if self.context is not None and not self.context.empty:
            context = lambert93(self.context, "communes voisines")
            if "insee_com" in context:
                context = context[~context["insee_com"].isin(commune["insee_com"])]
        if self.actors is not None and not self.actors.empty:
            actors = lambert93(self.actors, "partenaires").reset_index(drop=True)
        return replace(
            self, commune=commune, qpv=lambert93(self.qpv, "QPV").reset_index(drop=True),
            services=lambert93(self.services, "services").reset_index(drop=True), context=context, actors=actors,
        )

    def classes(self) -> tuple[pd.Series | None, st.Classes | None]:
        """Each QPV's indicator value and the classes colouring them; ``(None, None)`` without an indicator."""
        if self.indicator is None:
            return None, None
        if self.indicator not in self.qpv:
            raise KeyError(f"indicator column {self.indicator!r} not in the QPV table")
        values = pd.to_numeric(self.qpv[self.indicator], errors="coerce")
        return values, st.classify(values, k=self.k, scheme=self.scheme)

    def strong_needs(self) -> dict[str, list[str]]:
        """QPV code → domains with a strong unmet need (see :func:`diagnostic.report.maps.style.strong_needs`)."""
        return st.strong_needs(self.needs)
