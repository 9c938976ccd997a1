"""Marches exploratoires: a walk's route and its stops, from a GPX (OsmAnd…) or a GeoJSON (uMap…).

A GPX gives the route as its track (or route) and the stops as waypoints, each
with a name and a comment (``<cmt>`` or ``<desc>``); a GeoJSON gives the route
as a line and the stops as points with ``nom`` and ``commentaire``
properties. The catalogue declares it in the ``observations`` role::

    - path: marche_hauts_de_lys.gpx
      format: marche
      nom: Marche exploratoire des Tilleuls     # défaut : le nom du fichier GPX
      date: 2025-04-17                           # défaut : la date du fichier ou de la trace
      participants: {habitants: 11, bailleur: 1}  # facultatif : combien, par type, jamais qui
      citations: [2, 7]                          # étapes dont le commentaire est cité dans le rapport

Each stop becomes a located observation (source « marche exploratoire »): its
domain and problem come from a column (GPX ``<type>`` or GeoJSON ``domaine``
and ``type_probleme``, written « domaine/type_probleme » in GPX) or from the
keyword list ``diagnostic/resources/tables/mots_cles_marches.csv`` (editable; ``mots_cles:`` in the
catalogue names another). A file without stops still draws its route, with no
observation; a stop matching no keyword is listed without an observation;
stops outside the territory are counted and kept aside. A phone number or an
e-mail in a name or a comment, or an author's name in the GPX, refuses the file (code 21).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import gpxpy
import gpxpy.gpx
import pandas as pd
import shapely
from shapely.geometry import LineString, MultiLineString, Point

from diagnostic import resources
from diagnostic.errors import ConfidentialityError, UnknownFormatError, ValueFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources._io import (
    L93,
    LoadReport,
    check_exists,
    parse_dates,
    read_source_text,
    read_table,
    refuse,
    require_columns,
)
from diagnostic.io.sources.observations import problem_types
from diagnostic.io.sources.personal import contact_in
from diagnostic.io.sources.places import INSIDE, OUTSIDE, locate_points
from diagnostic.io.sources.services import DEFAULT_TOLERANCE_M
from diagnostic.text import fold

KEYWORDS_FILE = resources.path("tables/mots_cles_marches.csv")
SOURCE_TYPE = "marche exploratoire"
STOP_COLUMNS = ["walk", "date", "stop", "name", "comment", "domains", "problems", "code_qp", "insee_com", "status",
                "quoted", "geometry"]


@dataclass
class Walk:
    """One marche exploratoire: its route (Lambert-93), its stops and who took part (counts by type)."""

    name: str
    date: pd.Timestamp
    origin: str
    route: shapely.Geometry | None
    stops: gpd.GeoDataFrame
    participants: dict[str, int]


def keywords(path: Path = KEYWORDS_FILE) -> list[tuple[str, str, str]]:
    """The editable keyword list: (folded keyword, domain, problem type), longest keywords first."""
    table = read_table(path, "mots-clés des marches exploratoires", ";")
    require_columns(table, ("mot", "domaine", "type_probleme"), path, "mots-clés des marches exploratoires")
    problems = set(problem_types().index)
    refuse(~table["domaine"].isin(set(DOMAINS)) | ~table["type_probleme"].isin(problems),
           "domaine ou type de problème inconnu dans la liste des mots-clés.", path,
           hint=f"domaines : {', '.join(DOMAINS)} ; types : {', '.join(sorted(problems))}.")
    rows = [(fold(m).strip(), d, p) for m, d, p in zip(table["mot"], table["domaine"], table["type_probleme"])]
    return sorted(rows, key=lambda r: -len(r[0]))


def classify(text: str, words: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """The (domain, problem) pairs whose keywords start a word of ``text`` (« lampadaires » holds
    « lampadaire », « étage » does not hold « tag »); a longer keyword hides the shorter it holds."""
    folded, found = fold(text), []
    for word, domain, problem in words:
        pattern = re.compile(rf"(?<![a-z0-9]){re.escape(word)}")
        if pattern.search(folded):
            if (domain, problem) not in found:
                found.append((domain, problem))
            folded = pattern.sub(" ", folded)
    return found


def load_marche(
    source: Source, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame
) -> tuple[pd.DataFrame, Walk, LoadReport]:
    """Read a marche exploratoire: its observations, the walk (route and stops) and the load report."""
    check_exists(source.path, source.role)
    report = LoadReport(source.role, source.path)
    suffix = source.path.suffix.lstrip(".").lower()
    if suffix == "gpx":
        name, day, route, stops = _read_gpx(source)
    elif suffix in {"geojson", "json"}:
        name, day, route, stops = _read_geojson(source)
    else:
        raise UnknownFormatError(f"une marche exploratoire se lit depuis un GPX ou un GeoJSON, pas « {suffix} ».",
                                 path=source.path, hint="exportez la trace en GPX (OsmAnd) ou en GeoJSON (uMap).")
    name = str(source.options.get("nom") or name or source.path.stem)
    day = _walk_date(source, day)
    for column in ("name", "comment"):
        found = contact_in(stops[column]) if len(stops) else pd.Series(dtype=bool)
        refuse(found, f"{int(found.sum())} étape(s) contiennent un numéro de téléphone ou une adresse électronique "
               f"dans leur {'nom' if column == 'name' else 'commentaire'}.", source.path, error=ConfidentialityError,
               lines=stops.index + 1, hint="effacez ces coordonnées personnelles des étapes (numéros d'étape indiqués).")
    report.rows_read = len(stops)
    words = keywords(Path(source.options["mots_cles"])) if source.options.get("mots_cles") else keywords()
    walk = _walk(stops, name, day, route, source, communes, qpv, words)
    if route is None and walk.stops.empty:
        raise ValueFormatError("le fichier ne contient ni trace ni étape.", path=source.path,
                               hint="exportez la marche avec sa trace et ses points d'étape.")
    if walk.stops.empty:
        report.warn(f"« {name} » : aucune étape (point de passage) : le parcours est dessiné, sans observation.")
    unmatched = walk.stops[(walk.stops["status"] == INSIDE) & (walk.stops["domains"].map(len) == 0)]
    if len(unmatched):
        report.warn(f"{len(unmatched)} étape(s) sans domaine reconnu (étapes "
                    f"{', '.join(map(str, unmatched['stop']))}) : listées, sans besoin exprimé ; ajoutez un mot-clé "
                    "ou une colonne domaine / type_probleme.")
    outside = walk.stops[walk.stops["status"] == OUTSIDE]
    if len(outside):
        report.warn(f"{len(outside)} étape(s) hors du territoire du catalogue (étapes "
                    f"{', '.join(map(str, outside['stop']))}) : comptées à part.")
    report.rows_kept = int((walk.stops["status"] == INSIDE).sum())
    report.crs = L93
    return _observations(walk, float(source.options.get("poids", 1))), walk, report


def _walk_date(source: Source, found: pd.Timestamp | None) -> pd.Timestamp:
    declared = source.options.get("date")
    if declared is not None:
        return parse_dates(pd.Series([str(declared)]), source.path, "date (catalogue)", required=True).iloc[0]
    if found is None or pd.isna(found):
        raise ValueFormatError("la date de la marche est inconnue (ni dans le fichier, ni dans le catalogue).",
                               path=source.path, hint="ajoutez « date: AAAA-MM-JJ » à cette source dans le catalogue.")
    return pd.Timestamp(found).tz_localize(None).normalize() if pd.Timestamp(found).tzinfo else \
        pd.Timestamp(found).normalize()


def _stop_frame(rows: list[dict]) -> gpd.GeoDataFrame:
    columns = ["name", "comment", "kind", "domaine", "type_probleme", "time", "geometry"]
    frame = pd.DataFrame(rows, columns=columns).fillna("")
    return gpd.GeoDataFrame(frame, geometry=[r["geometry"] for r in rows] if rows else [], crs="EPSG:4326")


def _read_gpx(source: Source):
    try:
        gpx = gpxpy.parse(read_source_text(source.path, source.role))
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise UnknownFormatError(f"le fichier GPX est illisible ({exc}).", path=source.path) from None
    if gpx.author_email or gpx.author_name:
        raise ConfidentialityError("le GPX nomme son auteur (nom ou adresse électronique).", path=source.path,
                                   hint="effacez l'auteur des métadonnées du GPX (champ <author>).")
    lines = [[(p.longitude, p.latitude) for p in seg.points] for trk in gpx.tracks for seg in trk.segments]
    lines += [[(p.longitude, p.latitude) for p in rte.points] for rte in gpx.routes]
    lines = [ln for ln in lines if len(ln) >= 2]
    route = None if not lines else (LineString(lines[0]) if len(lines) == 1 else MultiLineString(lines))
    times = [p.time for trk in gpx.tracks for seg in trk.segments for p in seg.points if p.time]
    day = gpx.time or (times[0] if times else None)
    rows = []
    for w in gpx.waypoints:
        kind = (w.type or "").strip()
        domain, _, problem = kind.partition("/")
        rows.append({"name": (w.name or "").strip(), "comment": (w.comment or w.description or "").strip(),
                     "kind": kind, "domaine": domain.strip(), "type_probleme": problem.strip(),
                     "time": w.time or "", "geometry": Point(w.longitude, w.latitude)})
    name = gpx.name or next((t.name for t in gpx.tracks if t.name), None)
    return name, day, _to_l93(route), _stop_frame(rows)


def _read_geojson(source: Source):
    try:
        data = json.loads(read_source_text(source.path, source.role))
        features = data["features"] if data.get("type") == "FeatureCollection" else [data]
    except (ValueError, KeyError, AttributeError) as exc:
        raise UnknownFormatError(f"le fichier GeoJSON est illisible ({exc}).", path=source.path) from None
    lines, rows, name, day = [], [], (data.get("properties") or {}).get("nom"), None
    for f in features:
        geom = shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None
        props = {fold(str(k)): v for k, v in (f.get("properties") or {}).items()}
        if geom is None:
            continue
        if geom.geom_type in ("LineString", "MultiLineString"):
            lines += [geom] if geom.geom_type == "LineString" else list(geom.geoms)
            name = name or props.get("nom") or props.get("name")
            day = day or props.get("date")
        elif geom.geom_type == "Point":
            rows.append({"name": str(props.get("nom") or props.get("name") or "").strip(),
                         "comment": str(props.get("commentaire") or props.get("description") or "").strip(),
                         "kind": "", "domaine": str(props.get("domaine") or "").strip(),
                         "type_probleme": str(props.get("type_probleme") or "").strip(),
                         "time": props.get("date") or "", "geometry": geom})
    route = None if not lines else (lines[0] if len(lines) == 1 else MultiLineString(lines))
    day = pd.to_datetime(day, errors="coerce") if day else None
    return name, day, _to_l93(route), _stop_frame(rows)


def _to_l93(route):
    if route is None:
        return None
    return gpd.GeoSeries([route], crs="EPSG:4326").to_crs(L93).iloc[0]


def _walk(stops, name, day, route, source, communes, qpv, words) -> Walk:
    """Number, locate and classify the stops (a declared domain and problem first, else the keywords)."""
    problems = set(problem_types().index)
    stops = stops.to_crs(L93).reset_index(drop=True)
    place = locate_points(stops.geometry, communes, qpv, float(source.options.get("tolerance_m",
                                                                                    DEFAULT_TOLERANCE_M)))
    pairs = []
    for i, row in stops.iterrows():
        if row["domaine"] or row["type_probleme"]:
            if row["domaine"] not in DOMAINS or row["type_probleme"] not in problems:
                raise ValueFormatError(
                    f"étape {i + 1} : domaine ou type de problème inconnu (« {row['domaine']} », "
                    f"« {row['type_probleme']} »).", path=source.path, column="domaine/type_probleme", rows=[i + 1],
                    hint=f"domaines : {', '.join(DOMAINS)} ; types : {', '.join(sorted(problems))} "
                    "(en GPX : <type>domaine/type_probleme</type>).")
            pairs.append([(row["domaine"], row["type_probleme"])])
        else:
            pairs.append(classify(f"{row['name']} {row['comment']}", words))
    times = pd.to_datetime(stops["time"].replace("", None), errors="coerce", utc=True)
    quoted = {int(q) for q in source.options.get("citations") or []}
    out = gpd.GeoDataFrame({
        "walk": name, "date": times.dt.tz_localize(None).dt.normalize().fillna(day) if len(stops) else [],
        "stop": range(1, len(stops) + 1), "name": stops["name"], "comment": stops["comment"],
        "domains": [[d for d, _ in p] for p in pairs], "problems": [[q for _, q in p] for p in pairs],
        "code_qp": place["code_qp"], "insee_com": place["insee_com"], "status": place["status"],
        "quoted": [n in quoted for n in range(1, len(stops) + 1)],
    }, geometry=stops.geometry, crs=L93)[STOP_COLUMNS]
    participants = {str(k): int(v) for k, v in (source.options.get("participants") or {}).items()}
    return Walk(name=name, date=day, origin=source.path.name, route=route, stops=out, participants=participants)


def _observations(walk: Walk, weight: float) -> pd.DataFrame:
    rows = [
        {"date": s.date, "domain": d, "problem": p, "source_type": SOURCE_TYPE, "weight": weight,
         "comment": s.comment, "code_qp": s.code_qp, "insee_com": s.insee_com, "public": "habitants",
         "respondent": "", "origin": walk.origin, "stop": s.stop}
        for s in walk.stops.itertuples() if s.status == INSIDE for d, p in zip(s.domains, s.problems)
    ]
    columns = ["date", "domain", "problem", "source_type", "weight", "comment", "code_qp", "insee_com", "public",
               "respondent", "origin", "stop"]
    return pd.DataFrame(rows, columns=columns)
