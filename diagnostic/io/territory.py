"""Everything a catalogue describes, loaded and cross-checked: one object per data set."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from diagnostic import text
from diagnostic.analysis.consultation import Consultation, load_expressed
from diagnostic.errors import (
    CatalogError,
    OutOfTerritoryError,
    UnknownCommuneError,
    UnknownFormatError,
)
from diagnostic.io.catalog import Catalog, Source, load_catalog
from diagnostic.io.confined import allow_outside
from diagnostic.io.officer import check_officer_files
from diagnostic.io.sources._io import LoadReport
from diagnostic.io.sources.activity import load_activity
from diagnostic.io.sources.adultes_relais import load_contrats_de_ville
from diagnostic.io.sources.bpe import load_bpe, load_bpe_counts, typequ_labels
from diagnostic.io.sources.communes import load_communes
from diagnostic.io.sources.correspondence import carry_forward, load_correspondence
from diagnostic.io.sources.epci import EpciData, load_epci
from diagnostic.io.sources.france_services import (
    counted_once,
    load_france_services,
    without_bpe_duplicates,
)
from diagnostic.io.sources.insee import IndicatorTable, load_indicator_table
from diagnostic.io.sources.partners import load_partners, with_adultes_relais
from diagnostic.io.sources.postes import contract_label, load_posts
from diagnostic.io.sources.qpv import load_qpv
from diagnostic.io.sources.services import COLUMNS as SERVICE_COLUMNS
from diagnostic.io.sources.services import DEFAULT_TOLERANCE_M, load_services_csv
from diagnostic.io.sources.sigville import (
    NATIONAL_CODE,
    load_history,
    load_sigville,
    national_reference,
)

# A diagnostic reads its tables row by row and cell by cell far more than it searches them as text; strings held as
# Python objects do that two to three times faster than pandas' default Arrow storage (a Hauts-de-France report:
# 0.77 s → 0.53 s of computation), with the same ``str`` type and the same results. An explicit choice is kept.
if pd.get_option("mode.string_storage") == "auto":
    pd.set_option("mode.string_storage", "python")

SERVICE_LOADERS = {"bpe": load_bpe, "france_services": load_france_services, "csv": load_services_csv}


@dataclass
class TerritoryData:
    """The loaded, validated data of one catalogue, in Lambert-93."""

    catalog: Catalog
    communes: gpd.GeoDataFrame
    qpv: gpd.GeoDataFrame
    qpv_communes: pd.DataFrame
    qpv_indicators: IndicatorTable | None
    commune_indicators: IndicatorTable | None
    services: gpd.GeoDataFrame
    adultes_relais: pd.DataFrame | None = None
    contrats_de_ville: gpd.GeoDataFrame | None = None
    partners: Any = None
    observations: pd.DataFrame | None = None
    consultation: Consultation | None = None
    activity: pd.DataFrame | None = None
    epci: EpciData | None = None
    #: Equipment counted per IRIS and type, without coordinates (``insee_com``, ``iris``, ``type_code``, ``count``).
    equipment_counts: pd.DataFrame | None = None
    #: TYPEQU labels from INSEE's list, for types the project's domain table does not name.
    equipment_labels: pd.Series | None = None
    reports: list[LoadReport] = field(default_factory=list)

    def commune(self, code: str) -> pd.Series:
        """The commune row for ``code``; a French error if the catalogue does not hold it."""
        code = str(code).strip()
        match = self.communes[self.communes["insee_com"] == code]
        if match.empty:
            raise UnknownCommuneError(
                f"la commune « {code} » n'est pas dans le catalogue « {self.catalog.name} ».",
                path=self.catalog.path,
                hint="la commande « diagnostic territories --catalog … » liste les codes disponibles.",
            )
        return match.iloc[0]

    @property
    def has_qpv_outlines(self) -> bool:
        """True when the QPVs come with outlines (bands, distances and the map's QPV layer need them)."""
        return bool(len(self.qpv)) and bool(self.qpv.geometry.notna().all())

    @property
    def qpv_national(self) -> pd.DataFrame | None:
        """Every QPV of France (latest vintage of the national exports), one row per QPV, indicators as columns.

        The national distribution to compare a QPV with (percentiles, thresholds);
        ``qpv_indicators.national_reference`` holds the national value of each indicator.
        """
        return None if self.qpv_indicators is None else self.qpv_indicators.national

    @functools.cached_property
    def commune_names(self) -> pd.Series:
        """INSEE code → commune name."""
        return self.communes.set_index("insee_com")["lib_com"]

    @functools.cached_property
    def membership(self) -> pd.Series:
        """Commune → EPCI SIREN: INSEE's composition when the catalogue has it, else the QPV table's ``siren_epci``."""
        if self.epci is not None:
            table = self.epci.membership
        elif "siren_epci" in self.qpv and len(self.qpv):
            table = self.qpv_communes.merge(pd.DataFrame(self.qpv[["code_qp", "siren_epci"]]), on="code_qp")
        else:
            return pd.Series(dtype="string")
        table = table.dropna(subset=["siren_epci"]).drop_duplicates("insee_com")
        return table.set_index("insee_com")["siren_epci"].astype("string")

    @functools.cached_property
    def epci_names(self) -> pd.Series:
        """SIREN → EPCI name: INSEE's list when the catalogue has it, else the name of the contrat de ville it holds."""
        if self.epci is not None:
            return self.epci.epci.set_index("siren_epci")["lib_epci"]
        cv = self.contrats_de_ville
        if cv is None or cv.empty:
            return pd.Series(dtype="string")
        held = cv[cv["codgeo"].astype(str).str.len() == 9].drop_duplicates("codgeo")
        return held.set_index("codgeo")["lib_cv"].map(contract_label)

    def epci_of(self, code: str) -> dict[str, Any] | None:
        """The EPCI of commune ``code``: SIREN, name, nature and number of communes, or None."""
        if self.epci is None:
            return None
        siren = self.epci.membership.set_index("insee_com")["siren_epci"].get(code)
        if siren is None:
            return None
        row = self.epci.epci.set_index("siren_epci").loc[siren]
        return {"siren": siren, "nom": row["lib_epci"], "nature": row["nature_label"],
                "nombre_communes": int(row["communes_count"]) if pd.notna(row["communes_count"]) else None}

    def posts_of(self, code: str) -> pd.DataFrame:
        """Posts (adultes-relais, FONJEP) of the contrats de ville held by commune ``code`` or by its EPCI."""
        if self.adultes_relais is None or "codgeo" not in self.adultes_relais:
            return pd.DataFrame(columns=["year", "programme", "employer", "code_cv", "lib_cv", "amount"])
        epci = self.epci_of(code)
        posts = self.adultes_relais
        mine = posts["codgeo"] == code
        if epci and "siren_epci" in posts:
            mine |= posts["siren_epci"] == epci["siren"]
        return posts[mine].reset_index(drop=True)

    def qpv_in(self, code: str) -> gpd.GeoDataFrame:
        """QPVs belonging (wholly or partly) to commune ``code``."""
        codes = self.qpv_communes.loc[self.qpv_communes["insee_com"] == code, "code_qp"]
        return self.qpv[self.qpv["code_qp"].isin(codes)]

    def vintages(self) -> list[dict[str, str]]:
        """Each source file with its producer, vintage, licence and address (for annexes)."""
        return [
            {
                "role": s.label,
                "fichier": s.path.name,
                "producteur": s.producer or "",
                "millesime": s.vintage or "",
                "licence": s.licence or "",
                "adresse": s.url or "",
            }
            for items in self.catalog.sources.values()
            for latest in items
            for s in (*latest.earlier, latest)
        ]


#: Territories kept in this process once :func:`remember_territories` is called (a warm kernel's), by files' state.
_remembered: dict[tuple, TerritoryData] | None = None


def remember_territories(data: TerritoryData | None = None) -> None:
    """Keep the last territory loaded in this process, reused while none of its files changed.

    A warm kernel of a batch runs one notebook per commune of the same catalogue;
    each notebook loads the catalogue, which then costs its reading once. The
    notebooks only read the data they share. ``data``: a territory already loaded
    (a batch ships its own to its kernels), kept as if loaded here.
    """
    global _remembered
    if _remembered is None:
        _remembered = {}
    if data is not None:
        _remembered.clear()
        _remembered[_files_state(data.catalog)] = data


def _files_state(catalog: Catalog) -> tuple:
    """The catalogue's files with their sizes and modification times: a change to any of them changes it."""
    return tuple((str(f), *((f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else ())) for f in catalog.files())


def load_territory(catalog: Catalog | str | Path, data_dir: str | Path | None = None) -> TerritoryData:
    """Load every source of a catalogue, validate it and cross-check codes between files."""
    if not isinstance(catalog, Catalog):
        catalog = load_catalog(catalog, data_dir)
    check_officer_files(catalog.path.parent, catalog.texts_dir)  # published as written: checked before any work
    if _remembered is None:
        return _stored_load(catalog)
    key = _files_state(catalog)
    if key not in _remembered:
        _remembered.clear()
        _remembered[key] = _stored_load(catalog)
    return _remembered[key]


#: Loaded catalogues kept on disk (``territoires`` in the cache folder), the newest ones only.
STORED_FOLDER, STORED_KEPT = "territoires", 12


def _stored_load(catalog: Catalog) -> TerritoryData:
    """:func:`_load`, kept on disk under a key made of the content of every file the catalogue reads, their
    paths, and the workbench's code and tables: reading a region's official files takes 10 to 20 s (the
    INSEE EPCI workbook alone 4 to 9 s), reading them back 0.1 s. A changed byte or link anywhere loads again,
    and the loader's own checks (confinement, sizes, formats) ran on exactly these files before they were kept."""
    from diagnostic import __version__
    from diagnostic._fs import cache_root, code_fingerprint, write_private

    files = catalog.files()
    if not all(f.is_file() for f in files):  # a missing file, a pipe or a device: the loader says so, never the cache
        return _load(catalog)
    h = hashlib.sha256()
    # The paths as written and as resolved: a file swapped for a link elsewhere is read (and refused) again; a
    # catalogue read with --allow-outside is not reused without it.
    for part in (catalog.fingerprint(), *(f"{f}>{f.resolve()}" for f in files), __version__, code_fingerprint(),
                 f"allow_outside={allow_outside()}"):
        h.update(part.encode() + b"\0")
    folder = cache_root() / STORED_FOLDER
    path = folder / f"{h.hexdigest()[:32]}.pickle"
    with contextlib.suppress(OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError), path.open("rb") as f:
        return pickle.load(f)
    data = _load(catalog)
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next load
        write_private(path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        for old in sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)[STORED_KEPT:]:
            old.unlink(missing_ok=True)
    return data


def _load(catalog: Catalog) -> TerritoryData:
    reports: list[LoadReport] = []
    communes_src = _required(catalog, "communes")
    communes, rep = load_communes(communes_src)
    reports.append(rep)
    epci = None
    if (src := catalog.get("epci")) is not None:
        epci, rep = load_epci(src, communes)
        reports.append(rep)
        names = epci.epci.set_index("siren_epci")["lib_epci"]
        communes["siren_epci"] = communes["insee_com"].map(epci.membership.set_index("insee_com")["siren_epci"])
        communes["lib_epci"] = communes["siren_epci"].map(names)
    qpv_src = catalog.get("qpv")
    if qpv_src is not None:
        qpv, pairs, rep = load_qpv(qpv_src, communes)
        reports.append(rep)
        _check_communes_known(pairs, communes, qpv_src)
        _check_qpv_near_communes(qpv, pairs, communes, qpv_src)
    else:
        qpv = gpd.GeoDataFrame(
            {"code_qp": [], "lib_qp": [], "communes": [], "insee_com": [], "generation": []},
            geometry=[], crs=communes.crs,
        )
        pairs = pd.DataFrame({"code_qp": [], "insee_com": []})
    qpv_ind = _merge_tables(catalog, "qpv_indicators", "code_qp", reports)
    qpv_report = reports[-1] if qpv_ind is not None else None
    com_ind = _merge_tables(catalog, "commune_indicators", "insee_com", reports)
    if qpv_ind is not None and qpv_ind.national is not None:
        corr = None
        if (src := catalog.get("qpv_correspondence")) is not None:
            corr, rep = load_correspondence(src)
            reports.append(rep)
            corr = corr[corr["code_qp"].isin(set(qpv["code_qp"]))]
            qpv = qpv.assign(predecessors=qpv["code_qp"].map(corr.groupby("code_qp")["predecessor"].agg(",".join)))
        known = set(corr["predecessor"]) if corr is not None else set(qpv["code_qp"])
        qpv_ind = _national_split(qpv_ind, known, qpv_report)
        if corr is not None:
            qpv_ind = carry_forward(qpv_ind, corr)
    elif qpv_ind is not None:
        unknown = sorted(set(qpv_ind.values.index) - set(qpv["code_qp"]))
        if unknown:
            reports[-1].warn(f"{len(unknown)} QPV des indicateurs sans contour ({', '.join(unknown[:5])}).")
    services = _load_services(catalog, communes, reports)
    counts = labels = None
    if sources := catalog.all("equipment_counts"):
        frames = []
        for src in sources:
            frame, rep = load_bpe_counts(src, communes)
            reports.append(rep)
            frames.append(frame)
            if src.options.get("labels_file"):
                labels = typequ_labels(Path(src.options["labels_file"]))
        counts, note = counted_once(pd.concat(frames, ignore_index=True), services)
        if note:
            reports[-1].warn(note)
    contrats = adultes = None
    if sources := catalog.all("contrats_de_ville"):
        frames = []
        for src in sources:
            frame, rep = load_contrats_de_ville(src)
            reports.append(rep)
            frames.append(frame)
        contrats = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
        if epci is not None:
            contrats = _contract_epci(contrats, epci, reports[-1])
    if sources := catalog.all("adultes_relais"):
        frames = []
        for src in sources:
            frame, reps = load_posts(src, contrats, set(communes["insee_dep"]))
            reports.extend(reps)
            frames.append(frame)
        adultes = pd.concat(frames, ignore_index=True)
    partners = None
    if (src := catalog.get("partners")) is not None:
        partners, rep = load_partners(src, communes, qpv)
        reports.append(rep)
    if adultes is not None and (adultes["programme"] == "adulte-relais").any():
        partners = with_adultes_relais(partners, adultes[adultes["programme"] == "adulte-relais"])
    observations = consultation = None
    if sources := catalog.all("observations"):
        frames, consultation = [], Consultation()
        for src in sources:
            frame, part, rep = load_expressed(src, communes, qpv)
            reports.append(rep)
            frames.append(frame)
            consultation += part
        observations = pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    activity = None
    if (src := catalog.get("activity")) is not None:
        activity, rep = load_activity(src, communes, qpv, partners)
        reports.append(rep)
    communes = _commune_summary(communes, qpv, pairs, qpv_ind, com_ind)
    return TerritoryData(
        catalog=catalog,
        communes=communes,
        qpv=qpv,
        qpv_communes=pairs,
        qpv_indicators=qpv_ind,
        commune_indicators=com_ind,
        services=services,
        adultes_relais=adultes,
        contrats_de_ville=contrats,
        partners=partners,
        observations=observations,
        consultation=consultation,
        activity=activity,
        epci=epci,
        equipment_counts=counts,
        equipment_labels=labels,
        reports=reports,
    )


def _required(catalog: Catalog, role: str) -> Source:
    src = catalog.get(role)
    if src is None:
        raise CatalogError(f"la source « {role} » est obligatoire.", path=catalog.path)
    return src


def _check_communes_known(pairs: pd.DataFrame, communes: gpd.GeoDataFrame, source: Source) -> None:
    unknown = ~pairs["insee_com"].isin(set(communes["insee_com"]))
    if unknown.any():
        raise UnknownCommuneError(
            "des QPV sont rattachés à des communes absentes des contours communaux "
            f"({', '.join(sorted(set(pairs.loc[unknown, 'insee_com']))[:5])}, pour "
            f"{', '.join(sorted(set(pairs.loc[unknown, 'code_qp']))[:5])}).",
            path=source.path,
            hint="vérifiez les codes commune du fichier QPV, ou ajoutez ces communes au fichier des communes.",
        )


def _check_qpv_near_communes(qpv: gpd.GeoDataFrame, pairs: pd.DataFrame, communes: gpd.GeoDataFrame,
                             source: Source) -> None:
    """Refuse a QPV lying farther than the tolerance from a commune it is declared in (a wrong code or CRS)."""
    tolerance = float(source.options.get("tolerance_m", DEFAULT_TOLERANCE_M))
    geo_q = qpv.set_index("code_qp").geometry
    geo_c = communes.set_index("insee_com").geometry
    distance = geo_q.loc[pairs["code_qp"]].distance(geo_c.loc[pairs["insee_com"]], align=False).to_numpy()
    far = pairs[distance > tolerance]
    if not far.empty:
        worst = distance.max() / 1000
        raise OutOfTerritoryError(
            f"des QPV sont loin de la commune à laquelle ils sont rattachés "
            f"({', '.join(f'{q} / {c}' for q, c in far.head(5).itertuples(index=False))} ; "
            f"jusqu'à {text.number(worst)} km).",
            path=source.path,
            hint="vérifiez le code commune de ces QPV et le système de coordonnées du fichier ; "
            "« tolerance_m: » dans le catalogue règle l'écart admis.",
        )


def _contract_epci(contrats: gpd.GeoDataFrame, epci: EpciData, report: LoadReport) -> gpd.GeoDataFrame:
    """The EPCI of each contrat de ville: its ``codgeo`` when that is a current SIREN, else where its point lies.

    2015-generation contracts name the EPCI of their signature (Lille Métropole,
    245900410, for the MEL, 200093201, since 2015): the point then decides.
    """
    out = contrats.copy()
    sirens = set(epci.epci["siren_epci"])
    out["siren_epci"] = out["codgeo"].where(out["codgeo"].isin(sirens))
    communes_epci = epci.membership.set_index("insee_com")["siren_epci"]
    direct = out["codgeo"].str.len() == 5
    out.loc[direct, "siren_epci"] = out.loc[direct, "codgeo"].map(communes_epci)
    shapes = epci.epci[epci.epci.geometry.notna()]
    todo = out["siren_epci"].isna() & out.geometry.notna()
    if todo.any() and len(shapes):
        hit = gpd.sjoin(out[todo][["geometry"]], shapes[["siren_epci", "geometry"]], predicate="within", how="inner")
        hit = hit[~hit.index.duplicated()]
        out.loc[hit.index, "siren_epci"] = hit["siren_epci"]
        report.warn(f"{len(hit)} contrat(s) de ville rattaché(s) à leur EPCI actuel par leur position "
                    "(SIREN d'un ancien EPCI).")
    return out


def _load_table(src: Source, key: str, reports: list[LoadReport]) -> IndicatorTable:
    """One indicator source: an INSEE table, or an observatory export with its earlier vintages."""
    if (src.format or "").lower() != "sigville":
        table, rep = load_indicator_table(src, key)
        reports.append(rep)
        return table
    one, rep = load_sigville(src)
    reports.append(rep)
    table = one.table
    table.national = one.national
    if src.earlier:
        table.history, reps = load_history(src)
        reports.extend(reps[:-1])
    return table


def _national_split(table: IndicatorTable, codes: set[str], report: LoadReport) -> IndicatorTable:
    """Keep the catalogue's QPVs as its values; all national rows become the reference distribution."""
    rows = table.national
    pop = rows["population"].drop(NATIONAL_CODE, errors="ignore") if "population" in rows else None
    table.national_reference = national_reference(rows, table.definitions, pop)
    table.national = rows.drop(NATIONAL_CODE, errors="ignore")
    mine = table.values.index.isin(codes) if codes else slice(None)
    report.warn(f"{int((~mine).sum()) if codes else 0} QPV de France hors du catalogue gardés comme "
                     "référence nationale.")
    table.values, table.secret = table.values[mine], table.secret[mine]
    if table.reliability is not None:
        table.reliability = table.reliability[mine]
    if table.history is not None and codes:
        table.history = table.history[table.history["code_qp"].isin(codes)].reset_index(drop=True)
    return table


def _merge_tables(catalog: Catalog, role: str, key: str, reports: list[LoadReport]) -> IndicatorTable | None:
    tables = [_load_table(src, key, reports) for src in catalog.all(role)]
    if not tables:
        return None
    keys = [k for t in tables for k in t.values.columns]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise CatalogError(f"indicateur(s) fourni(s) par plusieurs fichiers : {', '.join(dup)}.", path=catalog.path)
    def joined(name: str) -> pd.DataFrame | None:
        parts = [getattr(t, name) for t in tables if getattr(t, name) is not None]
        return pd.concat(parts, axis=1) if parts else None

    history = [t.history for t in tables if t.history is not None]
    reliability = joined("reliability")
    return IndicatorTable(
        values=pd.concat([t.values for t in tables], axis=1),
        secret=pd.concat([t.secret for t in tables], axis=1).fillna(False).astype(bool),
        definitions=pd.concat([t.definitions for t in tables]),
        source=tables[0].source,
        extra_counts={k: v for t in tables for k, v in t.extra_counts.items()},
        reliability=None if reliability is None else reliability.fillna(""),
        national=joined("national"),
        history=pd.concat(history, ignore_index=True) if history else None,
    )


def _load_services(catalog: Catalog, communes: gpd.GeoDataFrame, reports: list[LoadReport]) -> gpd.GeoDataFrame:
    frames, listed = [], None
    for src in catalog.all("services"):
        kind = (src.format or "csv").lower()
        if kind not in SERVICE_LOADERS:
            raise UnknownFormatError(
                f"format de services « {kind} » inconnu.",
                path=catalog.path,
                hint=f"formats possibles : {', '.join(SERVICE_LOADERS)}.",
            )
        gdf, rep = SERVICE_LOADERS[kind](src, communes)
        reports.append(rep)
        frames.append(gdf)
        if kind == "france_services":
            listed = rep
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in SERVICE_COLUMNS[:-1]}, geometry=[], crs=communes.crs)
    services = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=communes.crs)
    dup = services["service_id"].duplicated()
    if dup.any():
        raise CatalogError(
            f"identifiants de services partagés entre fichiers ({', '.join(services.loc[dup, 'service_id'].head(3))}).",
            path=catalog.path,
        )
    services, note = without_bpe_duplicates(services)
    if note:
        (listed or reports[-1]).warn(note)
    return services.reset_index(drop=True)


def _commune_summary(
    communes: gpd.GeoDataFrame,
    qpv: gpd.GeoDataFrame,
    pairs: pd.DataFrame,
    qpv_ind: IndicatorTable | None,
    com_ind: IndicatorTable | None,
) -> gpd.GeoDataFrame:
    """Add QPV count and population to each commune (population from the commune table)."""
    out = communes.copy()
    out["qpv_count"] = out["insee_com"].map(pairs.groupby("insee_com")["code_qp"].nunique()).fillna(0).astype(int)
    population = pd.Series(index=out["insee_com"], dtype=float)
    if com_ind is not None and "population" in com_ind.values:
        population = out["insee_com"].map(com_ind.values["population"])
    elif qpv_ind is not None and "commune_population" in qpv_ind.values:
        single = qpv[~qpv["communes"].str.contains(",")].set_index("code_qp")["insee_com"]
        pop = qpv_ind.values["commune_population"].rename(index=single).groupby(level=0).max()
        population = out["insee_com"].map(pop)
    out["population"] = pd.to_numeric(population, errors="coerce").to_numpy()
    return out
