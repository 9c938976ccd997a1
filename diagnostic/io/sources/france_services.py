"""The ANCT list of France Services sites (latitude/longitude in WGS84, opening hours)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import LoadReport, points_from_columns, read_table, require_keys
from diagnostic.io.sources.services import finish, text_column

DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"]


def opening_hours(df: pd.DataFrame) -> pd.Series:
    """« lundi 09:00 - 12:00 ; mardi … » from the ``h_<jour>`` columns present."""
    parts = []
    for day in DAYS:
        col = f"h_{day}"
        if col in df.columns:
            parts.append(df[col].astype(str).str.strip().map(lambda v, d=day: f"{d} {v}" if v else ""))
    if not parts:
        return pd.Series([""] * len(df), index=df.index)
    joined = pd.concat(parts, axis=1)
    return joined.apply(lambda r: " ; ".join(v for v in r if v), axis=1)


def load_france_services(source: Source, communes: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, LoadReport]:
    report = LoadReport(source.role, source.path)
    cols = {"service_id": "id_fs", "name": "lib_fs", "insee_com": "insee_com", "x": "longitude",
            "y": "latitude", "address": "adresse", **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"))
    report.rows_read = len(df)
    require_keys(df, cols, ("service_id", "name", "insee_com", "x", "y"), source)
    pts = points_from_columns(df, cols["x"], cols["y"], source.options.get("crs", "EPSG:4326"), source.path, source.label)
    address = text_column(df, cols["address"]) + " " + text_column(df, "code_postal") + " " + text_column(df, "lib_com")
    gdf = gpd.GeoDataFrame(
        {
            "service_id": "FS-" + df[cols["service_id"]].str.strip(),
            "name": df[cols["name"]].str.strip(),
            "source_kind": "france_services",
            "type_code": "FS",
            "insee_com": df[cols["insee_com"]].str.strip().str.zfill(5),
            "address": address.str.strip(),
            "hours": opening_hours(df),
        },
        geometry=pts.geometry.values,
        crs=pts.crs,
    )
    return finish(gdf, source, communes, report), report


#: The code of a France Services site in the BPE (code lists 2024 and 2025).
BPE_CODE = "A128"
#: A BPE France Services site this close (metres) to a site of the ANCT list, in the same commune, is that site.
SAME_SITE_M = 500.0


def _bpe_sites(frame: pd.DataFrame) -> pd.Series:
    return frame["source_kind"].str.startswith("bpe_") & (frame["type_code"] == BPE_CODE)


def without_bpe_duplicates(services: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, str]:
    """The services with each France Services site once, and what was left out (French, empty if nothing).

    Rule: when the ANCT list is loaded, a BPE ``A128`` in the same commune as a
    site of the list and within 500 m of it is that site and is left out — the
    list, with its opening hours and monthly updates, is the reference; an
    ``A128`` with no site of the list near it is kept, and said.
    """
    candidates = services[_bpe_sites(services)]
    sites = services[services["source_kind"] == "france_services"]
    if candidates.empty or sites.empty:
        return services, ""
    near = gpd.sjoin(candidates[["insee_com", "geometry"]], sites[["insee_com", "geometry"]], predicate="dwithin",
                     distance=SAME_SITE_M, how="inner")
    same = near.index[near["insee_com_left"] == near["insee_com_right"]].unique()
    kept = len(candidates) - len(same)
    note = (f"{len(same)} implantation(s) France Services de la BPE ({BPE_CODE}) comptée(s) une seule fois : même "
            f"commune et moins de {SAME_SITE_M:.0f} m d'un site de la liste de l'ANCT, qui fait foi")
    note += f" ; {kept} autre(s) gardée(s), sans site de la liste à proximité." if kept else "."
    return services.drop(index=same), note


def counted_once(counts: pd.DataFrame, services: gpd.GeoDataFrame) -> tuple[pd.DataFrame, str]:
    """BPE counts without the ``A128`` of communes where the ANCT list has sites (they are counted from the list).

    Counts have no coordinates: the rule is by commune.
    """
    listed = set(services.loc[services["source_kind"] == "france_services", "insee_com"])
    drop = _bpe_sites(counts) & counts["insee_com"].isin(listed)
    if not drop.any():
        return counts, ""
    note = (f"{counts.loc[drop, 'count'].sum():.0f} implantation(s) France Services comptée(s) par la BPE ({BPE_CODE}) "
            f"dans {counts.loc[drop, 'insee_com'].nunique()} commune(s) laissée(s) de côté : les sites de la liste "
            "de l'ANCT de ces communes sont déjà comptés.")
    return counts[~drop].reset_index(drop=True), note
