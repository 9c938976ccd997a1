"""Partner registry (registre des partenaires): who acts on the territory, and who works with whom.

Two spreadsheet-friendly CSV files (``;`` or ``,``, UTF-8 or Latin-1), blank
models in ``templates/``:

* actors (``partenaires_modele.csv``): ``identifiant``, ``nom``, ``type`` are
  required; ``domaines``, ``communes``, ``qpv`` (several values separated by
  ``|`` or ``,``; empty = the whole territory), ``adresse``, ``latitude`` /
  ``longitude`` (WGS84) or ``x`` / ``y`` (Lambert-93, or ``crs:`` in the
  catalogue), ``role_contact`` (a role, never a person's name) and ``siret``
  are optional.
* relations (``relations_modele.csv``, named by ``relations:`` in the
  catalogue, else ``partenaires_relations.csv`` beside the actors): ``de``,
  ``vers``, ``nature`` required; ``depuis``, ``intensite``, ``commentaire`` optional.

Actor types come from ``diagnostic/resources/tables/types_acteurs.csv`` (editable): bailleur social,
opérateur de transport, commune / services municipaux, établissement scolaire,
CAF, France Services, police / gendarmerie, CLSPD, association, centre social,
opérateur de médiation, État / préfecture, département, EPCI, santé,
emploi / insertion, autre. Domains are the keys or labels of
:data:`diagnostic.io.reference.DOMAINS`. Natures: convention, financement,
orientation / passage de relais, instance commune, co-animation. Intensity:
1 to 3, faible / moyenne / forte, or a frequency (hebdomadaire, mensuelle…).

Adulte-relais posts (ANCT) become funding relations from the State to each
employer (:func:`adultes_relais_relations`, :func:`with_adultes_relais`); an employer
absent from the registry gets its type from :mod:`diagnostic.io.sources.employers`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import pandas as pd

from diagnostic import resources
from diagnostic.errors import (
    ConfidentialityError,
    EmptyFileError,
    MissingFileError,
    UnknownCommuneError,
    ValueFormatError,
    closest,
)
from diagnostic.io.catalog import DEFAULT_RELATIONS, Source
from diagnostic.io.confined import confine
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources._io import (
    L93,
    LoadReport,
    check_unique,
    examples,
    is_workbook,
    line_numbers,
    names_sheet,
    read_table,
    refuse,
    require_columns,
    require_keys,
    sheet_errors,
    sheet_name,
    sniff_separator,
    to_l93,
    to_number,
)
from diagnostic.io.sources.employers import employer_type
from diagnostic.io.sources.personal import refuse_contacts
from diagnostic.text import count, fold, plural

TYPES_FILE = resources.path("tables/types_acteurs.csv")
ACTOR_COLUMNS = {"actor_id": "identifiant", "name": "nom", "type": "type", "domains": "domaines",
                 "communes": "communes", "qpv": "qpv", "address": "adresse", "latitude": "latitude",
                 "longitude": "longitude", "x": "x", "y": "y", "contact_role": "role_contact", "siret": "siret"}
RELATION_COLUMNS = {"source": "de", "target": "vers", "nature": "nature", "since": "depuis",
                    "intensity": "intensite", "comment": "commentaire"}
#: Relation natures: key → (French label, mutual by nature, a return relation is expected).
NATURES: dict[str, tuple[str, bool, bool]] = {
    "convention": ("convention", True, False),
    "financement": ("financement", False, False),
    "orientation": ("orientation / passage de relais", False, True),
    "instance": ("instance commune", True, False),
    "co_animation": ("co-animation", True, False),
}
_NATURE_SYNONYMS = {"passage de relais": "orientation", "orientation passage de relais": "orientation",
                    "instance commune": "instance", "co animation": "co_animation", "coanimation": "co_animation",
                    "subvention": "financement", "partenariat conventionne": "convention"}
#: Intensity words → weight 1 (weak) to 3 (strong).
INTENSITIES = {"1": 1, "2": 2, "3": 3, "faible": 1, "moyenne": 2, "moyen": 2, "forte": 3, "fort": 3,
               "ponctuelle": 1, "ponctuel": 1, "annuelle": 1, "trimestrielle": 1, "mensuelle": 2,
               "mensuel": 2, "hebdomadaire": 3, "quotidienne": 3, "quotidien": 3}
#: Columns that would hold personal data: refused (a registry names roles, not people).
PERSONAL = {"email", "mail", "courriel", "telephone", "tel", "portable", "nom contact", "prenom",
            "nom du contact", "contact"}
#: Registry columns holding numbers only (coordinates, SIRET), not read for contact details.
_NUMERIC_KEYS = {"latitude", "longitude", "x", "y", "siret"}
_ROLE_HINT = ("le registre décrit des structures : désignez une personne par sa fonction (« role_contact ») et "
              "effacez ces coordonnées personnelles.")
MEDIATION = "mediation"
STATE = "etat"
STATE_ACTOR = ("etat-anct", "État (préfecture, ANCT)")
_SPLIT = re.compile(r"\s*[|,]\s*")


@dataclass
class Partners:
    """Actors (one row each, a point geometry when located) and relations between them.

    ``actors`` columns: actor_id, name, type, type_label, domains, communes, qpv
    (lists), address, contact_role, siret, posts, origin, geometry (EPSG:2154).
    ``relations`` columns: source, target, nature, nature_label, since,
    intensity, weight (1–3), comment, posts, amount, origin. ``qpv_communes``
    holds the QPV–commune pairs (code_qp, insee_com, lib_qp) of the territory,
    to tell which actors serve a QPV.
    """

    actors: gpd.GeoDataFrame
    relations: pd.DataFrame
    qpv_communes: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"code_qp": [], "insee_com": [], "lib_qp": []})
    )


def normalize(text: str) -> str:
    """Lower case, no accents, words separated by single spaces (for matching labels)."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text)).split())


@lru_cache(maxsize=4)
def actor_types(path: Path = TYPES_FILE) -> pd.DataFrame:
    """The editable list of actor types: key → label, colour, usual domains, synonyms."""
    if not path.exists():
        raise MissingFileError("liste des types d'acteurs introuvable.", path=path)
    df = read_table(path, "types d'acteurs", sep=";")
    require_columns(df, ("cle", "libelle", "couleur", "domaines_habituels"), path, "types d'acteurs")
    unknown = {d for cell in df["domaines_habituels"] for d in _SPLIT.split(cell) if d} - set(DOMAINS)
    if unknown:
        raise ValueFormatError(f"domaines inconnus : {', '.join(sorted(unknown))}.", path=path,
                               column="domaines_habituels", hint=f"domaines possibles : {', '.join(DOMAINS)}.")
    return df.set_index("cle")


def _type_lookup() -> dict[str, str]:
    types = actor_types()
    lookup: dict[str, str] = {}
    for key, row in types.iterrows():
        names = [key, row["libelle"], *_SPLIT.split(row.get("synonymes", "") or "")]
        lookup.update({normalize(n): key for n in names if n})
    return lookup


@names_sheet
def load_partners(
    source: Source, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame
) -> tuple[Partners, LoadReport]:
    """Read and check the actors and relations files of the ``partners`` role."""
    report = LoadReport(source.role, source.path)
    cols = {**ACTOR_COLUMNS, **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"), sheet=source.options.get("sheet"))
    report.rows_read = len(df)
    require_keys(df, cols, ("actor_id", "name", "type"), source)
    _refuse_personal(df, source.path)
    refuse_contacts(df, source.path, [c for k, c in cols.items() if k not in _NUMERIC_KEYS], hint=_ROLE_HINT)
    text = {k: _text(df, c) for k, c in cols.items()}
    _require_filled(text["actor_id"], source.path, cols["actor_id"])
    _require_filled(text["name"], source.path, cols["name"])
    check_unique(text["actor_id"], source.path, cols["actor_id"])
    types = _types(text["type"], source.path, cols["type"])
    type_labels = actor_types()["libelle"]
    pairs = _pairs(qpv)
    actors = gpd.GeoDataFrame(
        {
            "actor_id": text["actor_id"],
            "name": text["name"],
            "type": types,
            "type_label": types.map(type_labels),
            "domains": _domains(text["domains"], source.path, cols["domains"]),
            "communes": _communes(text["communes"], communes, source.path, cols["communes"]),
            "qpv": _qpvs(text["qpv"], qpv, source.path, cols["qpv"]),
            "address": text["address"],
            "contact_role": text["contact_role"],
            "siret": text["siret"].str.replace(" ", "", regex=False),
            "posts": pd.array([pd.NA] * len(df), dtype="Int64"),
            "origin": "registre",
        },
        geometry=_points(df, cols, source, communes, report),
        crs=L93,
    )
    report.rows_kept = len(actors)
    report.crs = L93
    relations = _relations(source, set(actors["actor_id"]), report)
    return Partners(actors, relations, pairs), report


def _text(df: pd.DataFrame, column: str) -> pd.Series:
    if column in df.columns:
        return df[column].astype(str).str.strip()
    return pd.Series([""] * len(df), index=df.index, dtype=object)


def _require_filled(values: pd.Series, path: Path, column: str) -> None:
    refuse(values == "", "cellules vides.", path, column, hint="chaque ligne doit avoir un identifiant et un nom.")


def _refuse_personal(df: pd.DataFrame, path: Path) -> None:
    for column in df.columns:
        if normalize(column) in PERSONAL and (df[column].astype(str).str.strip() != "").any():
            raise ConfidentialityError(
                f"la colonne « {column} » contient des coordonnées personnelles.",
                path=path,
                column=column,
                hint="le registre décrit des structures : indiquez le rôle du contact (« role_contact ») "
                "et supprimez cette colonne.",
            )


def _types(values: pd.Series, path: Path, column: str) -> pd.Series:
    lookup = _type_lookup()
    keys = values.map(lambda v: lookup.get(normalize(v)))
    bad = keys.isna()
    first, labels = examples(values, bad, 1), list(actor_types()["libelle"])
    refuse(bad, f"type d'acteur inconnu « {first} »{_did_you_mean(first, labels)}.", path, column,
           hint=f"types possibles : {', '.join(labels)} (liste modifiable : diagnostic/resources/tables/types_acteurs.csv).")
    return keys.astype(str)


def _did_you_mean(value: str, candidates: Iterable[str]) -> str:
    """« (vouliez-vous dire « … » ?) » with the closest candidate, or nothing when none is close."""
    near = closest(value, candidates) if value else None
    return f" (vouliez-vous dire « {near} » ?)" if near else ""


def _cells(cell: str, whole: dict[str, str]) -> list[str]:
    """Split a multi-valued cell; a cell that is one known label (commas included) stays whole."""
    if not cell:
        return []
    if normalize(cell) in whole:
        return [cell]
    return [v for v in _SPLIT.split(cell) if v]


def _domains(values: pd.Series, path: Path, column: str) -> pd.Series:
    lookup = {normalize(k): k for k in DOMAINS} | {normalize(v): k for k, v in DOMAINS.items()}
    out, bad, unknown_values = [], [], []
    for cell in values:
        items = _cells(cell, lookup)
        unknown = [v for v in items if normalize(v) not in lookup]
        bad.append(bool(unknown))
        unknown_values += unknown
        out.append(sorted({lookup[normalize(v)] for v in items if normalize(v) in lookup}, key=list(DOMAINS).index))
    refuse(bad, f"domaine(s) inconnu(s) : {', '.join(dict.fromkeys(unknown_values))}.", path, column,
           hint=f"domaines possibles (clé ou libellé, séparés par « | ») : {', '.join(DOMAINS)}.")
    return pd.Series(out, index=values.index, dtype=object)


def _communes(values: pd.Series, communes: gpd.GeoDataFrame, path: Path, column: str) -> pd.Series:
    codes = set(communes["insee_com"])
    by_name = {normalize(n): c for c, n in zip(communes["insee_com"], communes["lib_com"])}
    out, bad, unknown_values = [], [], []
    for cell in values:
        found, unknown = [], []
        for item in _cells(cell, by_name):
            code = item.zfill(5) if item.isdigit() else item
            code = code if code in codes else by_name.get(normalize(item))
            (found if code else unknown).append(code or item)
        out.append(sorted(set(found)))
        bad.append(bool(unknown))
        unknown_values += unknown
    refuse(bad, f"commune(s) absente(s) du territoire du catalogue : {', '.join(dict.fromkeys(unknown_values))}.",
           path, column, error=UnknownCommuneError,
           hint="indiquez le code INSEE d'une commune du catalogue (« diagnostic territories » les liste), "
           "ou laissez vide pour tout le territoire.")
    return pd.Series(out, index=values.index, dtype=object)


def _qpvs(values: pd.Series, qpv: gpd.GeoDataFrame, path: Path, column: str) -> pd.Series:
    codes = set(qpv["code_qp"])
    out = values.map(lambda cell: sorted({v.upper() for v in _cells(cell, {})}))
    unknown = out.map(lambda items: [v for v in items if v not in codes])
    listed = ", ".join(dict.fromkeys(v for items in unknown for v in items))
    refuse(unknown.map(bool), f"QPV absent(s) du territoire du catalogue : {listed}.", path, column,
           hint="indiquez le code d'un QPV du catalogue (ex. QN09901A), séparés par « | » ; "
           + (f"QPV connus : {', '.join(sorted(codes)[:10])}." if codes else "le catalogue n'a pas de QPV."))
    return out


def _points(
    df: pd.DataFrame, cols: dict[str, str], source: Source, communes: gpd.GeoDataFrame, report: LoadReport
) -> gpd.GeoSeries:
    """Lambert-93 points from latitude/longitude or x/y; missing where no coordinate is given."""
    pairs = [(cols["longitude"], cols["latitude"], "EPSG:4326"), (cols["x"], cols["y"], source.options.get("crs", L93))]
    points = gpd.GeoSeries([None] * len(df), index=df.index, crs=L93)
    for xcol, ycol, crs in pairs:
        if xcol not in df.columns or ycol not in df.columns:
            continue
        xs, _ = to_number(df[xcol], source.path, xcol)
        ys, _ = to_number(df[ycol], source.path, ycol)
        refuse(xs.isna() != ys.isna(), "coordonnée incomplète (une seule des deux est remplie).", source.path,
               f"{ycol}/{xcol}", hint="remplissez les deux colonnes, ou aucune.")
        located = xs.notna() & points.isna()
        if located.any():
            raw = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xs[located], ys[located]), index=df.index[located], crs=crs)
            points[located] = to_l93(raw, source.path, crs).geometry
    if points.notna().any():
        far = points.notna() & ~points.within(communes.union_all().buffer(5_000))
        if far.any():
            report.warn(f"{int(far.sum())} acteur(s) situé(s) à plus de 5 km du territoire (lignes "
                        f"{', '.join(map(str, line_numbers(far)[:5]))}) : vérifiez leurs coordonnées.")
    return points


def _relations(source: Source, known: set[str], report: LoadReport) -> pd.DataFrame:
    path = Path(source.options.get("relations")  # confined by the catalogue; the default beside the registry here
                or confine(source.path.with_name(DEFAULT_RELATIONS), [source.path.parent],
                           "le fichier des relations", source.path, "du dossier du registre"))
    sheet = source.options.get("relations_sheet")
    with sheet_errors(path, sheet):
        return _check_relations(_read_relations(path, source.options.get("sep"), sheet), path, known, report)


def _check_relations(df: pd.DataFrame, path: Path, known: set[str], report: LoadReport) -> pd.DataFrame:
    cols = RELATION_COLUMNS
    require_columns(df, (cols[k] for k in ("source", "target", "nature")), path, "relations entre partenaires")
    refuse_contacts(df, path, [cols["comment"], cols["nature"]], hint=_ROLE_HINT)
    text = {k: _text(df, c) for k, c in cols.items()}
    for key in ("source", "target"):
        unknown = ~text[key].isin(known)
        first = examples(text[key], unknown, 1)
        refuse(unknown, f"relation vers un acteur inconnu « {first} »{_did_you_mean(first, known)}.", path, cols[key],
               hint="chaque relation relie deux identifiants de la colonne « identifiant » du fichier des acteurs.")
    refuse(text["source"] == text["target"], "relation d'un acteur avec lui-même.", path, cols["target"],
           hint="« de » et « vers » doivent être deux acteurs différents.")
    natures = _natures(text["nature"], path, cols["nature"])
    weights = _weights(text["intensity"], path, cols["intensity"])
    out = pd.DataFrame({
        "source": text["source"], "target": text["target"], "nature": natures,
        "nature_label": natures.map(lambda k: NATURES[k][0]), "since": text["since"],
        "intensity": text["intensity"], "weight": weights, "comment": text["comment"],
        "posts": pd.array([pd.NA] * len(df), dtype="Int64"), "amount": float("nan"), "origin": "registre",
    })
    dup = out.duplicated(["source", "target", "nature"])
    if dup.any():
        report.warn(f"{int(dup.sum())} relation(s) en double ignorée(s) (lignes "
                    f"{', '.join(map(str, line_numbers(dup)[:5]))} du fichier des relations).")
    return out[~dup].reset_index(drop=True)


def _read_relations(path: Path, sep: str | None, sheet: str | None) -> pd.DataFrame:
    """The relations file; one holding only its header line means « no relation yet »."""
    try:
        return read_table(path, "relations entre partenaires", sep, sheet=sheet)
    except EmptyFileError:
        if is_workbook(path):
            return _header_only_sheet(path, sheet)
        header = path.read_text(encoding="utf-8-sig", errors="replace").strip()
        if not header:
            raise
        return pd.DataFrame(columns=[c.strip() for c in header.split(sep or sniff_separator(header))])


def _header_only_sheet(path: Path, sheet: str | None) -> pd.DataFrame:
    """A relations sheet holding only its header: no relation yet, columns kept (an empty sheet is an error)."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        first = next(book[sheet_name(path, sheet)].iter_rows(values_only=True), ())
    finally:
        book.close()
    header = [str(c).strip() for c in first if c is not None]
    if not header:
        raise EmptyFileError("la feuille des relations est vide (pas même un en-tête).", path=path,
                             sheet=sheet_name(path, sheet))
    return pd.DataFrame(columns=header)


def _natures(values: pd.Series, path: Path, column: str) -> pd.Series:
    lookup = {normalize(k): k for k in NATURES} | {normalize(v[0]): k for k, v in NATURES.items()} | _NATURE_SYNONYMS
    keys = values.map(lambda v: lookup.get(normalize(v)))
    bad = keys.isna()
    refuse(bad, f"nature de relation inconnue « {examples(values, bad, 1)} ».", path, column,
           hint=f"natures possibles : {', '.join(v[0] for v in NATURES.values())}.")
    return keys.astype(str)


def _weights(values: pd.Series, path: Path, column: str) -> pd.Series:
    weights = values.map(lambda v: INTENSITIES.get(normalize(v), 0 if not v else None))
    bad = weights.isna()
    refuse(bad, f"intensité inconnue « {examples(values, bad, 1)} ».", path, column,
           hint="attendu : 1, 2 ou 3 ; faible, moyenne ou forte ; ou une fréquence (hebdomadaire, mensuelle, "
           "trimestrielle, annuelle, ponctuelle) ; ou une cellule vide.")
    return weights.replace(0, 2).astype(int)


def _pairs(qpv: gpd.GeoDataFrame) -> pd.DataFrame:
    """QPV–commune pairs with the QPV's name, from the QPV table's comma-separated communes."""
    if "communes" not in qpv.columns or qpv.empty:
        return pd.DataFrame({"code_qp": [], "insee_com": [], "lib_qp": []})
    pairs = qpv[["code_qp", "lib_qp"]].assign(insee_com=qpv["communes"].str.split(","))
    return pairs.explode("insee_com")[["code_qp", "insee_com", "lib_qp"]].reset_index(drop=True)


def adultes_relais_relations(posts: pd.DataFrame) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """State funding of adulte-relais posts: one relation per employer of the latest year.

    Each relation carries that year's number of posts and total amount, and the
    first year the employer appears in the file as ``since``.
    """
    posts = posts.assign(
        employer_key=_employer_keys(posts),
        amount=pd.to_numeric(posts["amount"], errors="coerce") if "amount" in posts else float("nan"),
    )
    latest = int(posts["year"].max())
    first = posts.groupby("employer_key")["year"].min()
    current = posts[posts["year"] == latest]
    agg = {"name": ("employer", "first"), "posts": ("post_id", "nunique"), "amount": ("amount", "sum")}
    if "employer_siret" in current:
        agg["siret"] = ("employer_siret", "first")
    if "code_cv" in current:
        agg["contrats"] = ("code_cv", lambda s: ", ".join(sorted({c for c in s.dropna() if c})))
    by_employer = current.groupby("employer_key").agg(**agg).reset_index()
    state_id, state_name = STATE_ACTOR
    labels = actor_types()["libelle"]
    sirets = by_employer["siret"] if "siret" in by_employer else pd.Series("", index=by_employer.index)
    employers = pd.DataFrame({
        "actor_id": by_employer["employer_key"],
        "name": by_employer["name"],
        "type": [employer_type(n, s) for n, s in zip(by_employer["name"], sirets)],
        "siret": by_employer.get("siret", ""),
        "posts": by_employer["posts"].astype("Int64"),
    })
    state = pd.DataFrame({"actor_id": [state_id], "name": [state_name], "type": [STATE], "siret": [""],
                          "posts": pd.array([pd.NA], dtype="Int64")})
    actors = pd.concat([state, employers], ignore_index=True).assign(
        type_label=lambda d: d["type"].map(labels),
        domains=lambda d: [[] for _ in range(len(d))],
        communes=lambda d: [[] for _ in range(len(d))],
        qpv=lambda d: [[] for _ in range(len(d))],
        address="",
        contact_role="",
        origin="ANCT adultes-relais",
    )
    actors = gpd.GeoDataFrame(actors, geometry=gpd.GeoSeries([None] * len(actors), crs=L93), crs=L93)
    comment = by_employer.get("contrats", pd.Series("", index=by_employer.index))
    relations = pd.DataFrame({
        "source": state_id, "target": by_employer["employer_key"], "nature": "financement",
        "nature_label": NATURES["financement"][0], "since": by_employer["employer_key"].map(first).astype(str),
        "intensity": "", "weight": 3,
        "comment": [f"{latest} : {count(n, 'poste adulte-relais', 'postes adultes-relais')}"
                    + (f" ; {plural(len(c.split(', ')), 'contrat de ville', 'contrats de ville')} {c}" if c else "")
                    for n, c in zip(by_employer["posts"], comment)],
        "posts": by_employer["posts"].astype("Int64"), "amount": by_employer["amount"], "origin": "ANCT adultes-relais",
    })
    return actors[_ACTOR_ORDER], relations


_ACTOR_ORDER = ["actor_id", "name", "type", "type_label", "domains", "communes", "qpv", "address",
                "contact_role", "siret", "posts", "origin", "geometry"]


def _employer_keys(posts: pd.DataFrame) -> pd.Series:
    """An identifier per employer: ``siret-<SIRET>``, else one made from the name."""
    name_key = "employeur-" + posts["employer"].map(normalize).str.replace(" ", "-", regex=False)
    if "employer_siret" not in posts:
        return name_key
    siret = posts["employer_siret"].fillna("").astype(str).str.replace(" ", "", regex=False)
    return ("siret-" + siret).where(siret.str.fullmatch(r"\d{9,14}"), name_key)


def with_adultes_relais(partners: Partners | None, posts: pd.DataFrame) -> Partners:
    """Add the State's funding of adulte-relais posts to a registry (or make one from the posts alone).

    Employers are matched to registry actors by SIRET, then by name; the funder
    is the registry's only « État / préfecture » actor when there is exactly one.
    A funding relation already in the registry is completed with the posts.
    """
    ar_actors, ar_relations = adultes_relais_relations(posts)
    if partners is None:
        return Partners(ar_actors, ar_relations)
    actors = partners.actors
    rename: dict[str, str] = {}
    by_siret = {s: a for s, a in zip(actors["siret"], actors["actor_id"]) if s}
    by_name = {normalize(n): a for n, a in zip(actors["name"], actors["actor_id"])}
    for _, row in ar_actors.iterrows():
        match = by_siret.get(row["siret"]) or by_name.get(normalize(row["name"]))
        if match:
            rename[row["actor_id"]] = match
    states = actors.loc[actors["type"] == STATE, "actor_id"]
    if len(states) == 1:
        rename[STATE_ACTOR[0]] = states.iloc[0]
    posts_of = ar_actors.set_index("actor_id")["posts"].rename(index=rename)
    actors = actors.assign(posts=actors["actor_id"].map(posts_of).astype("Int64"))
    new_actors = ar_actors[~ar_actors["actor_id"].isin(rename)]
    relations = ar_relations.replace({"source": rename, "target": rename})
    key = ["source", "target", "nature"]
    merged = partners.relations.merge(relations[key + ["posts", "amount", "comment"]], on=key, how="left",
                                      suffixes=("", "_ar"))
    known = merged["posts_ar"].notna()
    merged.loc[known, "posts"] = merged.loc[known, "posts_ar"]
    merged.loc[known, "amount"] = merged.loc[known, "amount_ar"]
    merged.loc[known, "comment"] = (merged.loc[known, "comment"] + " ; " + merged.loc[known, "comment_ar"]).str.strip(" ;")
    merged = merged.drop(columns=["posts_ar", "amount_ar", "comment_ar"])
    fresh = relations.merge(partners.relations[key], on=key, how="left", indicator=True)
    fresh = fresh[fresh["_merge"] == "left_only"].drop(columns="_merge")
    return replace(
        partners,
        actors=gpd.GeoDataFrame(pd.concat([actors, new_actors], ignore_index=True), crs=L93),
        relations=pd.concat([merged, fresh], ignore_index=True),
    )
