"""Light geometries for web maps: simplified at the displayed scale, rounded, in WGS84."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from diagnostic.errors import CRSError

LAMBERT93 = "EPSG:2154"
#: Five decimals of a degree are about one metre: finer than the simplification.
DECIMALS = 5


def lambert93(gdf: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    """``gdf`` in Lambert-93; a French error when it has no coordinate system."""
    if gdf.crs is None:
        raise CRSError(
            f"la couche « {what} » n'a pas de système de coordonnées.",
            hint="les cartes attendent des couches chargées par diagnostic.io.territory (Lambert-93).",
        )
    return gdf if gdf.crs == LAMBERT93 else gdf.to_crs(LAMBERT93)


def web_geometries(geoms: gpd.GeoSeries, tolerance_m: float) -> np.ndarray:
    """Simplify in Lambert-93 (metres), project to WGS84 and round coordinates."""
    simplified = geoms.simplify(tolerance_m, preserve_topology=True) if tolerance_m > 0 else geoms
    wgs84 = simplified.to_crs("EPSG:4326").to_numpy()
    return shapely.transform(wgs84, lambda c: np.round(c, DECIMALS))


def feature_collection(
    gdf: gpd.GeoDataFrame,
    properties: Mapping[str, Sequence[Any]] | None = None,
    *,
    ids: Sequence[str] | None = None,
    tolerance_m: float = 3.0,
) -> dict:
    """A GeoJSON FeatureCollection carrying only the given properties (and ids)."""
    geoms = web_geometries(gdf.geometry, tolerance_m)
    props = properties or {}
    features = []
    for i, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        feature: dict[str, Any] = {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(geom),
            "properties": {key: values[i] for key, values in props.items()},
        }
        if ids is not None:
            feature["id"] = str(ids[i])
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def band_ring(qpv: gpd.GeoDataFrame, band_m: float) -> gpd.GeoSeries:
    """The band of ``band_m`` metres around the QPVs, without the QPVs: one ring geometry."""
    inside = qpv.geometry.union_all()
    ring = inside.buffer(band_m).difference(inside)
    return gpd.GeoSeries([ring], crs=qpv.crs)
