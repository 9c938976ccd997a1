"""Locate a point: in which commune, inside a QPV or its band, and the nearest services of each domain.

A point is given by coordinates (WGS84 longitude and latitude by default, or
Lambert-93), or by the name or identifier of a place the data already
geolocate: a service or a partner. Distances are in metres, in Lambert-93,
from the point to the QPV's edge (0 inside) and to each service.

Without QPV outlines (the observatory's lists give QPVs as tables), nothing can be placed inside a QPV or its
band: the answer names the point's commune and that commune's QPVs, and says it cannot tell whether the point
lies in one of them; it never names another commune's QPV as the nearest.
"""

from __future__ import annotations

import re
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely.geometry import Point

from diagnostic import text
from diagnostic.analysis.indicators.domains import service_domains
from diagnostic.errors import ParameterError
from diagnostic.io.reference import DOMAINS
from diagnostic.io.territory import TerritoryData
from diagnostic.options import BAND_M
from diagnostic.text import fold

WGS84 = "EPSG:4326"
LAMBERT93 = "EPSG:2154"
_NUMBER = r"[-+]?\d+(?:[.,]\d+)?"
_COORDINATES = re.compile(rf"^\s*({_NUMBER})\s*(?:[;,]\s*|\s+)({_NUMBER})\s*$")
#: Where France is, as (west, south, east, north) boxes in WGS84 degrees: metropolitan France with Corsica,
#: then Guadeloupe, Martinique, Guyane, La Réunion and Mayotte (the territories with QPVs).
FRANCE_BOXES = (
    (-5.3, 41.3, 9.7, 51.2),
    (-61.9, 15.8, -60.9, 16.6),
    (-61.3, 14.3, -60.8, 14.9),
    (-54.7, 2.0, -51.5, 5.9),
    (55.2, -21.5, 55.9, -20.8),
    (44.9, -13.1, 45.4, -12.6),
)
_HINT = "saisissez « latitude, longitude » (ex. 43.6045, 1.4440 pour Toulouse) ou « x y » en Lambert-93."


def locate(
    data: TerritoryData,
    x: float,
    y: float,
    crs: str = WGS84,
    band_m: float = BAND_M,
    per_domain: int = 3,
) -> dict[str, Any]:
    """Where the point ``(x, y)`` (longitude, latitude in WGS84) stands, and what serves it.

    Returns the point in Lambert-93, its commune, whether it is inside a QPV
    or within ``band_m`` of one (every such QPV with its distance), the nearest
    QPV, and the ``per_domain`` nearest services of each mediation domain.
    """
    point = gpd.GeoSeries([Point(float(x), float(y))], crs=crs).to_crs(LAMBERT93).iloc[0]
    communes = data.communes[data.communes.covers(point)]
    commune = None if communes.empty else {"code": communes.iloc[0]["insee_com"], "name": communes.iloc[0]["lib_com"]}
    outlined = data.qpv[data.qpv.geometry.notna()]
    qpv = outlined.assign(distance_m=outlined.distance(point).round(1)).sort_values("distance_m")
    near = [
        {"code": r.code_qp, "name": r.lib_qp, "distance_m": float(r.distance_m),
         "position": "inside" if r.distance_m == 0 else "band"}
        for r in qpv[qpv["distance_m"] <= band_m].itertuples()
    ]
    nearest_qpv = None
    if len(qpv):
        first = qpv.iloc[0]
        nearest_qpv = {"code": first["code_qp"], "name": first["lib_qp"], "distance_m": float(first["distance_m"])}
    own = data.qpv_in(commune["code"]) if commune else data.qpv.iloc[0:0]
    unplaced = own[own.geometry.isna()]
    return {
        "x_l93": round(point.x, 1),
        "y_l93": round(point.y, 1),
        "band_m": float(band_m),
        "commune": commune,
        "inside_qpv": any(q["position"] == "inside" for q in near),
        "in_band": bool(near),
        "qpv": near,
        "nearest_qpv": nearest_qpv,
        "outlines": bool(len(outlined)),
        "commune_qpv": [{"code": r.code_qp, "name": r.lib_qp} for r in own.itertuples()],
        "note": _without_outlines(commune, unplaced, band_m),
        "services": nearest_services(data, point, per_domain),
    }


def _without_outlines(commune: dict[str, Any] | None, unplaced: gpd.GeoDataFrame, band_m: float) -> str:
    """What cannot be said without outlines, in French: empty when the commune's QPVs all have theirs."""
    if commune is None or unplaced.empty:
        return ""
    names = text.join([f"{r.lib_qp} ({r.code_qp})" for r in unplaced.itertuples()])
    word = "le quartier prioritaire" if len(unplaced) == 1 else "les quartiers prioritaires"
    return (f"Les contours des QPV ne sont pas fournis : {commune['name']} compte {word} {names} ; sans leurs "
            f"contours, impossible de dire si le point est dans l'un d'eux ou à moins de {text.number(band_m)} m, "
            "et la largeur de bande n'a pas d'effet ici.")


def nearest_services(data: TerritoryData, point: Point, per_domain: int = 3) -> list[dict[str, Any]]:
    """The ``per_domain`` nearest services of each domain to a Lambert-93 point, in domain order."""
    pairs = service_domains(data.services)
    if pairs.empty:
        return []
    pairs = pairs.assign(distance_m=pairs.distance(point).round(1),
                         order=pairs["domain"].map({d: i for i, d in enumerate(DOMAINS)}))
    pairs = pairs.sort_values(["order", "distance_m"]).groupby("domain", sort=False).head(per_domain)
    return [
        {"domain": r.domain, "domain_label": r.domain_label, "service_id": r.service_id, "name": r.name,
         "type": r.type_label, "address": "" if pd.isna(r.address) else r.address, "distance_m": float(r.distance_m)}
        for r in pairs.itertuples()
    ]


def places(data: TerritoryData) -> pd.DataFrame:
    """Every place the data geolocate: services and partners, with a label and Lambert-93 coordinates."""
    frames = [pd.DataFrame({"id": data.services["service_id"], "name": data.services["name"], "kind": "service",
                            "geometry": data.services.geometry})]
    if data.partners is not None:
        actors = data.partners.actors
        actors = actors[actors.geometry.notna() & ~actors.geometry.is_empty]
        frames.append(pd.DataFrame({"id": actors["actor_id"], "name": actors["name"], "kind": "partenaire",
                                    "geometry": actors.geometry}))
    out = pd.concat(frames, ignore_index=True)
    points = gpd.GeoSeries(out.pop("geometry"), crs=data.services.crs)
    return out.assign(x=points.x, y=points.y)


def find_place(data: TerritoryData, text: str) -> pd.DataFrame:
    """Places whose identifier or name matches ``text``: exact identifier, exact name, then part of a name."""
    query = fold(text)
    found = places(data)
    names, ids = found["name"].astype(str).map(fold), found["id"].astype(str).map(fold)
    score = pd.Series(0, index=found.index)
    score[names.str.contains(query, regex=False)] = 1
    score[names == query] = 2
    score[ids == query] = 3
    found = found.assign(score=score)[score > 0] if query else found.iloc[:0]
    return found.sort_values(["score", "name"], ascending=[False, True]).reset_index(drop=True)


def in_france(lon: float, lat: float) -> bool:
    """True when a WGS84 point lies in metropolitan France or an overseas department (:data:`FRANCE_BOXES`)."""
    return any(w <= lon <= e and s <= lat <= n for w, s, e, n in FRANCE_BOXES)


def parse_coordinates(text: str) -> tuple[float, float, str] | None:
    """``(x, y, crs)`` from « lat, lon » (WGS84) or « x y » (Lambert-93, in metres); None for other text.

    Coordinates outside France are refused, swapped ones (« lon, lat ») with a hint saying so.
    """
    match = _COORDINATES.match(text)
    if not match:
        return None
    a, b = (float(v.replace(",", ".")) for v in match.groups())
    if abs(a) <= 90 and abs(b) <= 180:
        if in_france(b, a):
            return b, a, WGS84
        swapped = abs(b) <= 90 and in_france(a, b)
        raise ParameterError(
            f"coordonnées « {text.strip()} » hors de France"
            + (" : latitude et longitude semblent inversées." if swapped else "."),
            hint=(f"saisissez d'abord la latitude, puis la longitude : « {match.group(2)} ; {match.group(1)} »."
                  if swapped else _HINT))
    if 0 < a < 1_300_000 and 6_000_000 < b < 7_200_000:
        return a, b, LAMBERT93
    raise ParameterError(f"coordonnées « {text.strip()} » hors de France.", hint=_HINT)


def locate_text(data: TerritoryData, text: str, band_m: float = BAND_M) -> dict[str, Any]:
    """:func:`locate` for what an officer types: coordinates, or the name or identifier of a place."""
    coords = parse_coordinates(text)
    if coords is not None:
        x, y, crs = coords
        return {**locate(data, x, y, crs, band_m), "place": None, "other_matches": 0}
    found = find_place(data, text)
    if found.empty and places(data).empty:
        raise ParameterError(
            f"aucun lieu ne correspond à « {text.strip()} » : le catalogue « {data.catalog.name} » "
            "ne géolocalise aucun service ni partenaire.",
            hint=_HINT + " Pour chercher par nom, ajoutez au catalogue des services (rôle « services ») "
                 "ou un registre des partenaires géolocalisés (rôle « partners »).")
    if found.empty:
        raise ParameterError(f"aucun lieu ne correspond à « {text.strip()} ».",
                             hint="saisissez « latitude, longitude », ou le nom d'un service ou d'un partenaire.")
    best = found.iloc[0]
    place = {"id": best["id"], "name": best["name"], "kind": best["kind"]}
    return {**locate(data, best["x"], best["y"], LAMBERT93, band_m), "place": place,
            "other_matches": len(found) - 1}
