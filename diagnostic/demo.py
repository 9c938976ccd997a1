"""The fictional demo territory, generated from a fixed seed.

Three fictional communes of a fictional department « 99 », with three QPVs of
the 2024 generation (one spans two communes), equipment in the INSEE BPE format,
France Services in the ANCT format, INSEE-format indicators, adulte-relais posts,
a partner registry, expressed needs, a residents' questionnaire export (KoboToolbox, about 120
answers), a marche exploratoire (GPX, 10 stops), two meeting records, a year of mediation activity and
the shared self-assessment of a mediation structure in 2025 and 2026 (answers, staff table, the plan's follow-up). Every file
is written in the same format as the official data, so the demo exercises the
same loaders; every report made from it says « données fictives ».

Run ``python -m diagnostic.demo`` (or ``diagnostic demo-data``) to rewrite ``data/demo/``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import Point, Polygon

from diagnostic.io.catalog import PROJECT_ROOT

DEMO_DIR = PROJECT_ROOT / "data" / "demo"
SEED = 20261125
DEP = "99"
X0, Y0 = 240_000.0, 6_620_000.0  # at sea off the Atlantic coast, so no real place is drawn over

COMMUNES = [
    # code, name, population, centre offset (m), radius (m)
    ("99101", "Villeneuve-sur-Lys", 48_212, (0, 0), 3_200),
    ("99102", "Saint-Aubin-les-Prés", 6_480, (6_300, 1_200), 2_300),
    ("99103", "Mont-Clair", 12_045, (300, -5_600), 2_500),
]
QPVS = [
    # code, name, centre offset (m), radius (m), population, poverty %, median €, youth index, jobseekers
    ("QN09901A", "Les Hauts de Lys", (-900, 900), 520, 6_840, 44.6, 13_150, 1.9, 1_020),
    ("QN09902B", "Centre Ancien", (1_150, -350), 340, 2_310, 36.2, 14_720, 1.1, 310),
    ("QN09903C", "La Garenne – Les Tilleuls", (250, -3_050), 480, 4_105, 41.3, 13_640, 1.6, 590),
]
# TYPEQU (code list of BPE 2023–2024), label, count per commune (99101, 99102, 99103)
BPE_TYPES = [
    ("A101", "Police", (2, 0, 1)),
    ("A104", "Gendarmerie", (0, 1, 0)),
    ("A206", "Bureau de poste", (3, 1, 1)),
    ("A208", "Agence postale communale", (0, 0, 1)),
    ("A122", "Réseau de proximité France Travail", (1, 0, 0)),
    ("C107", "École maternelle", (6, 1, 2)),
    ("C109", "École élémentaire", (7, 1, 2)),
    ("C201", "Collège", (3, 0, 1)),
    ("C302", "Lycée professionnel", (1, 0, 0)),
    ("D108", "Centre de santé", (1, 0, 0)),
    ("D113", "Maison de santé pluriprofessionnelle", (0, 1, 1)),
    ("D265", "Médecin généraliste", (9, 2, 3)),
    ("D307", "Pharmacie", (6, 1, 2)),
    ("D502", "Établissement d'accueil du jeune enfant", (3, 0, 1)),
    ("E108", "Gare", (1, 0, 0)),
    ("F101", "Bassin de natation", (1, 0, 0)),
    ("F111", "Plateau EPS / city-stade", (4, 1, 2)),
    ("F121", "Salle multisports", (2, 0, 1)),
    ("F307", "Bibliothèque", (2, 1, 1)),
]
CATALOG_SERVICES = [
    # identifier, name, category, commune, offset (m) from the commune centre
    ("S01", "Agence Habitat Lys – bailleur social", "bailleur", "99101", (-1_300, 1_250)),
    ("S02", "Loge de gardiens Les Tilleuls", "bailleur", "99103", (600, 2_400)),
    ("S03", "Centre social Les Hauts", "centre_social", "99101", (-700, 1_000)),
    ("S04", "Maison des jeunes de Mont-Clair", "maison_jeunes", "99103", (-300, 300)),
    ("S05", "Mission locale du Val de Lys", "mission_locale", "99101", (200, 150)),
    ("S06", "CCAS de Villeneuve-sur-Lys", "ccas", "99101", (50, -60)),
    ("S07", "Arrêt de bus Les Hauts", "arret_transport", "99101", (-950, 700)),
    ("S08", "Arrêt de bus Gare", "arret_transport", "99101", (900, -1_050)),
    ("S09", "Arrêt de bus La Garenne", "arret_transport", "99103", (0, 2_300)),
    ("S10", "Police municipale", "police_municipale", "99101", (100, -200)),
]


def _blob(rng: np.random.Generator, cx: float, cy: float, radius: float, n: int = 18) -> Polygon:
    """An irregular, valid polygon around a centre."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = radius * rng.uniform(0.75, 1.15, n)
    return Polygon(np.column_stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)]))


def _communes(rng: np.random.Generator) -> gpd.GeoDataFrame:
    shapes = {code: _blob(rng, X0 + dx, Y0 + dy, r, 24) for code, _, _, (dx, dy), r in COMMUNES}
    # Make communes share borders: each later commune gives up what the earlier ones hold.
    taken = Polygon()
    for code, shape in shapes.items():
        shapes[code] = shape.difference(taken)
        taken = taken.union(shapes[code])
    return gpd.GeoDataFrame(
        {"code": [c[0] for c in COMMUNES], "nom": [c[1] for c in COMMUNES]},
        geometry=list(shapes.values()),
        crs="EPSG:2154",
    )


def _qpvs(rng: np.random.Generator, communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    union = communes.union_all()
    rows = []
    for code, name, (dx, dy), r, *_ in QPVS:
        shape = _blob(rng, X0 + dx, Y0 + dy, r).intersection(union)
        for _, com in communes[communes.intersects(shape)].iterrows():
            part = shape.intersection(com.geometry)
            if part.area > 0.01 * shape.area:
                rows.append({"code_qp": code, "lib_qp": name, "insee_reg": "99", "lib_reg": "Région fictive",
                             "insee_dep": DEP, "lib_dep": "Département fictif", "insee_com": com["code"],
                             "lib_com": com["nom"], "siren_epci": "299000001", "geometry": part})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:2154")


def _points_in(rng: np.random.Generator, shape, n: int, inset: float = 60) -> list[Point]:
    """``n`` random points at least ``inset`` metres inside ``shape``."""
    minx, miny, maxx, maxy = shape.bounds
    inner = shape.buffer(-inset)
    out: list[Point] = []
    while len(out) < n:
        p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if inner.contains(p):
            out.append(p)
    return out


def _bpe(rng: np.random.Generator, communes: gpd.GeoDataFrame) -> pd.DataFrame:
    rows = []
    for typequ, label, counts in BPE_TYPES:
        for (_, com), n in zip(communes.iterrows(), counts):
            for p in _points_in(rng, com.geometry, n):
                rows.append({"AN": "2024", "REG": "99", "DEP": DEP, "DEPCOM": com["code"], "TYPEQU": typequ,
                             "NOMRS": f"{label} (fictif)", "LAMBERT_X": f"{p.x:.1f}", "LAMBERT_Y": f"{p.y:.1f}",
                             "QUALITE_XY": "Bonne"})
    # One equipment that INSEE could not geolocate, as in the real BPE.
    rows.append({"AN": "2024", "REG": "99", "DEP": DEP, "DEPCOM": "99102", "TYPEQU": "D265",
                 "NOMRS": "Médecin généraliste (fictif)", "LAMBERT_X": "", "LAMBERT_Y": "",
                 "QUALITE_XY": "Non géolocalisé"})
    return pd.DataFrame(rows)


def _france_services(communes: gpd.GeoDataFrame) -> pd.DataFrame:
    centre = communes.set_index("code").geometry.loc["99101"].centroid
    bus = communes.set_index("code").geometry.loc["99102"].centroid
    pts = gpd.GeoSeries([Point(centre.x + 400, centre.y - 250), bus], crs="EPSG:2154").to_crs("EPSG:4326")
    hours = "08:30 - 12:00 / 13:30 - 17:30"
    return pd.DataFrame([
        {"id_fs": "9901", "insee_dep": DEP, "lib_fs": "France services Villeneuve-sur-Lys", "adresse": "2 place de la Mairie",
         "complement_adresse": "", "insee_com": "99101", "code_postal": "99100", "lib_com": "Villeneuve-sur-Lys",
         "latitude": f"{pts[0].y:.6f}", "longitude": f"{pts[0].x:.6f}", "mail": "", "telephone": "",
         "h_lundi": hours, "h_mardi": hours, "h_mercredi": hours, "h_jeudi": hours, "h_vendredi": hours,
         "h_samedi": "", "prise_rdv": "Oui", "commentaire": "", "type_fs": "Principal", "format_fs": "Fixe",
         "groupe_fs": "", "labellisation_fs": "Espace labellisé 01/01/2022"},
        {"id_fs": "9902", "insee_dep": DEP, "lib_fs": "Bus France services du Val de Lys", "adresse": "Place de l'Église",
         "complement_adresse": "", "insee_com": "99102", "code_postal": "99120", "lib_com": "Saint-Aubin-les-Prés",
         "latitude": f"{pts[1].y:.6f}", "longitude": f"{pts[1].x:.6f}", "mail": "", "telephone": "",
         "h_lundi": "", "h_mardi": "09:00 - 12:00", "h_mercredi": "", "h_jeudi": "14:00 - 17:00", "h_vendredi": "",
         "h_samedi": "", "prise_rdv": "Non", "commentaire": "", "type_fs": "Principal", "format_fs": "Bus_équivalent",
         "groupe_fs": "", "labellisation_fs": "Espace labellisé 01/06/2023"},
    ])


def _catalog_services(communes: gpd.GeoDataFrame) -> pd.DataFrame:
    centres = communes.set_index("code").geometry.centroid
    rows = []
    for ident, name, cat, code, (dx, dy) in CATALOG_SERVICES:
        c = centres.loc[code]
        rows.append({"identifiant": ident, "nom": name, "categorie": cat, "code_commune": code,
                     "x": f"{c.x + dx:.1f}", "y": f"{c.y + dy:.1f}", "adresse": "", "horaires": ""})
    return pd.DataFrame(rows)


def _fr(value: float, digits: int = 1) -> str:
    """A number written the French way, as INSEE publishes it."""
    return f"{value:.{digits}f}".replace(".", ",")


def _indicators() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    qpv = pd.DataFrame([
        {"code_qp": code, "nom_qp": name, "nom_commune": "Villeneuve-sur-Lys" if code != "QN09903C" else "Villeneuve-sur-Lys, Mont-Clair",
         "pop_mun": p, "ind_jeune": youth, "tp60": pov, "disp_q2": med, "abcde": jobs,
         "tx_tot_empl": "" if code == "QN09902B" else round(70 - pov * 0.6, 1)}
        for code, name, _, _, p, pov, med, youth, jobs in QPVS
    ])
    populations = pd.DataFrame([
        {"REG": "99", "Région": "Région fictive", "DEP": DEP, "CODARR": "1", "CODCAN": "01", "CODCOM": code[2:],
         "COM": code, "Commune": name, "PMUN": p, "PCAP": int(p * 0.015), "PTOT": int(p * 1.015)}
        for code, name, p, _, _ in COMMUNES
    ])
    filo = pd.DataFrame([
        {"CODGEO": "99101", "NBMENFISC21": "21 480".replace(" ", ""), "MED21": "19870", "TP6021": _fr(24.8), "PPSOC21": _fr(9.4)},
        {"CODGEO": "99102", "NBMENFISC21": "2710", "MED21": "23140", "TP6021": "s", "PPSOC21": "s"},
        {"CODGEO": "99103", "NBMENFISC21": "5230", "MED21": "20950", "TP6021": _fr(19.6), "PPSOC21": _fr(7.1)},
    ])
    return qpv, populations, filo


def _adultes_relais(rng: np.random.Generator) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    rows = []
    employers = [("77812345600017", "ASSOCIATION LYS MEDIATION"), ("21991010000015", "COMMUNE DE VILLENEUVE-SUR-LYS")]
    for year, n in ((2022, 3), (2023, 4)):
        for i in range(n):
            siret, name = employers[0] if i < n - 1 else employers[1]
            rows.append({"annee": year, "id_poste": f"099{year % 100}RT{i:05d}", "code_tiers": siret,
                         "raison_sociale": name, "montant": "21059.40", "code_cv": "CV999",
                         "insee_dep": DEP, "insee_reg": "99"})
    cv = gpd.GeoDataFrame(
        {"codgeo": ["299000001"], "code_cv": ["CV999"], "lib_cv": ["99 - CA du Val de Lys (fictif)"],
         "insee_dep": [DEP], "pop": [13255.0]},
        geometry=[Point(X0, Y0)], crs="EPSG:2154",
    ).to_crs("EPSG:4326")
    return pd.DataFrame(rows), cv


PARTNERS = [
    # identifier, name, type, domains, communes, QPVs, offset (m) from its commune's centre or None, contact role, SIRET
    ("A01", "Ville de Villeneuve-sur-Lys", "commune / services municipaux", "acces_droits|espace_public|jeunesse",
     "99101", "", (0, 0), "Chef de projet politique de la ville", "21991010000015"),
    ("A02", "Habitat Lys", "bailleur social", "habitat|espace_public", "99101|99103", "QN09901A|QN09903C",
     (-1_300, 1_250), "Responsable de la gestion de proximité", ""),
    ("A03", "Lysbus – réseau de transport du Val de Lys", "opérateur de transport", "transports", "99101|99103", "",
     (900, -1_050), "Responsable sûreté et relation client", ""),
    ("A04", "Collège Jules-Ferry", "établissement scolaire", "education", "99101", "QN09901A", (-600, 1_300),
     "Conseillère principale d'éducation", ""),
    ("A05", "École élémentaire Les Tilleuls", "établissement scolaire", "education", "99103", "QN09903C",
     (100, 2_200), "Directrice", ""),
    ("A06", "CAF du département (fictive)", "CAF", "acces_droits", "", "", None, "Travailleuse sociale de secteur", ""),
    ("A07", "France services Villeneuve-sur-Lys", "France Services", "acces_droits", "99101", "", (400, -250),
     "Animatrice France services", ""),
    ("A08", "Police municipale de Villeneuve-sur-Lys", "police / gendarmerie", "espace_public", "99101",
     "QN09901A|QN09902B", (100, -200), "Chef de service", ""),
    ("A09", "CLSPD du Val de Lys", "CLSPD", "espace_public", "99101|99102|99103", "", None,
     "Coordinatrice du CLSPD", ""),
    ("A10", "Centre social Les Hauts", "centre social", "jeunesse|acces_droits|education", "99101", "QN09901A",
     (-700, 1_000), "Directeur", ""),
    ("A11", "Lys Médiation", "opérateur de médiation", "espace_public|habitat|transports|acces_droits", "99101",
     "QN09901A|QN09902B", (-850, 800), "Coordinatrice de l'équipe de médiation", "77812345600017"),
    ("A12", "Les Tilleuls Solidaires", "association", "jeunesse|acces_droits", "99103", "QN09903C", (0, 2_350),
     "Président", ""),
    ("A13", "Mission locale du Val de Lys", "emploi / insertion", "emploi|jeunesse", "99101|99102|99103", "",
     (200, 150), "Conseiller référent QPV", ""),
    ("A14", "Préfecture – délégué du préfet (fictif)", "État / préfecture", "acces_droits|espace_public", "", "",
     None, "Délégué du préfet", ""),
    ("A15", "Maison de santé de Mont-Clair", "santé", "sante", "99103", "", (350, -300), "Coordinatrice", ""),
    ("A16", "Logis du Val", "bailleur social", "habitat", "99103", "QN09903C", (650, 2_450),
     "Chargé de gestion locative", ""),
]
# Deliberate gaps: A12 has no relation; A16 (bailleur on La Garenne) has no link to the mediation
# operator; Lys Médiation orients towards France services, which does not orient back.
PARTNER_RELATIONS = [
    # from, to, nature, since, intensity, comment
    ("A01", "A11", "convention", "2019", "forte", "Convention pluriannuelle de médiation sociale"),
    ("A14", "A11", "financement", "2018", "forte", "Postes adultes-relais"),
    ("A02", "A11", "convention", "2021", "forte", "Médiation dans le parc social"),
    ("A02", "A11", "financement", "2021", "moyenne", "Abattement TFPB"),
    ("A03", "A11", "convention", "2022", "moyenne", "Médiation sur les lignes de soirée"),
    ("A11", "A07", "orientation / passage de relais", "2020", "hebdomadaire", ""),
    ("A07", "A06", "orientation / passage de relais", "2018", "hebdomadaire", ""),
    ("A06", "A07", "orientation / passage de relais", "2018", "mensuelle", "Permanence CAF"),
    ("A11", "A10", "orientation / passage de relais", "2019", "mensuelle", ""),
    ("A10", "A11", "orientation / passage de relais", "2019", "mensuelle", ""),
    ("A10", "A11", "co-animation", "2022", "ponctuelle", "Fête de quartier des Hauts"),
    ("A09", "A08", "instance commune", "2017", "mensuelle", "Cellule de veille"),
    ("A09", "A11", "instance commune", "2019", "trimestrielle", "Cellule de veille"),
    ("A09", "A01", "instance commune", "2017", "trimestrielle", "Séance plénière"),
    ("A09", "A14", "instance commune", "2017", "annuelle", "Séance plénière"),
    ("A08", "A11", "orientation / passage de relais", "2020", "mensuelle", ""),
    ("A11", "A08", "orientation / passage de relais", "2020", "ponctuelle", ""),
    ("A04", "A11", "convention", "2023", "moyenne", "Médiation aux abords du collège"),
    ("A10", "A13", "orientation / passage de relais", "2020", "mensuelle", ""),
    ("A13", "A10", "orientation / passage de relais", "2020", "mensuelle", "Permanence jeunes"),
    ("A01", "A10", "financement", "2015", "forte", "Subvention de fonctionnement"),
    ("A01", "A16", "convention", "2020", "moyenne", "Gestion urbaine de proximité"),
    ("A15", "A07", "orientation / passage de relais", "2023", "ponctuelle", ""),
    ("A07", "A15", "orientation / passage de relais", "2023", "ponctuelle", ""),
    ("A01", "A05", "instance commune", "2021", "trimestrielle", "Programme de réussite éducative"),
]


def _partners(communes: gpd.GeoDataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The partner registry in the template's format: actors (WGS84 coordinates) and relations."""
    centres = communes.set_index("code").geometry.centroid
    rows = []
    for ident, name, kind, domains, codes, qpvs, offset, role, siret in PARTNERS:
        lat = lon = ""
        if offset is not None:
            c = centres.loc[codes.split("|")[0]]
            p = gpd.GeoSeries([Point(c.x + offset[0], c.y + offset[1])], crs="EPSG:2154").to_crs("EPSG:4326")[0]
            lat, lon = f"{p.y:.6f}", f"{p.x:.6f}"
        rows.append({"identifiant": ident, "nom": name, "type": kind, "domaines": domains, "communes": codes,
                     "qpv": qpvs, "adresse": "", "latitude": lat, "longitude": lon, "role_contact": role,
                     "siret": siret})
    relations = pd.DataFrame(PARTNER_RELATIONS, columns=["de", "vers", "nature", "depuis", "intensite", "commentaire"])
    return pd.DataFrame(rows), relations


OBSERVATIONS = [
    # QPV, domain, problem, source, count, weight
    ("QN09901A", "espace_public", "nuisances", "marche exploratoire", 6, 1.0),
    ("QN09901A", "espace_public", "insecurite_ressentie", "questionnaire", 5, 1.0),
    ("QN09901A", "habitat", "degradations", "marche exploratoire", 4, 1.0),
    ("QN09901A", "acces_droits", "non_recours_droits", "entretien", 3, 2.0),
    ("QN09902B", "espace_public", "conflits_usage", "réunion", 3, 1.0),
    ("QN09902B", "sante", "isolement", "entretien", 2, 2.0),
    ("QN09903C", "transports", "incivilites_transports", "questionnaire", 5, 1.0),
    ("QN09903C", "habitat", "conflits_voisinage", "réunion", 3, 1.0),
    ("QN09903C", "jeunesse", "conflits_usage", "marche exploratoire", 3, 1.0),
    ("QN09903C", "education", "decrochage_scolaire", "entretien", 2, 2.0),
]


def _observations(rng: np.random.Generator) -> pd.DataFrame:
    """Expressed needs from a spring 2025 consultation (marches exploratoires, questionnaires…)."""
    rows = []
    for code, domain, problem, source, n, weight in OBSERVATIONS:
        for _ in range(n):
            day = pd.Timestamp("2025-03-01") + pd.Timedelta(days=int(rng.integers(0, 90)))
            rows.append({"date": day.strftime("%Y-%m-%d"), "qpv": code, "code_commune": "", "domaine": domain,
                         "type_probleme": problem, "source": source, "poids": _fr(weight, 0),
                         "commentaire": ""})
    rows.append({"date": "2025-04-12", "qpv": "", "code_commune": "99102", "domaine": "acces_droits",
                 "type_probleme": "isolement", "source": "réunion", "poids": "1",
                 "commentaire": "Personnes âgées isolées loin du bus France services"})
    return pd.DataFrame(rows)


# Activity log: (key, probability, sub-types, domains with weights, outcomes with weights, minutes).
ACTIVITY_MIX = [
    ("presence", 0.44, ["tournée", "porte-à-porte", "permanence"],
     {"espace_public": 5, "habitat": 2, "transports": 1.5, "jeunesse": 1.5}, {}, (60, 180)),
    ("conflit", 0.14, ["temps_reel"] * 13 + ["navette"] * 4 + ["table_ronde"] * 3,
     {"habitat": 4, "espace_public": 3.5, "transports": 1, "education": 1, "jeunesse": 0.5},
     {"resolu": 55, "oriente": 15, "en_cours": 20, "sans_suite": 10}, (15, 90)),
    ("veille", 0.16, ["technique"] * 4 + ["sociale"], {"habitat": 4.5, "espace_public": 4.5, "transports": 1},
     {"oriente": 6, "en_cours": 4}, (10, 30)),
    ("mise_en_relation", 0.16, [""],
     {"acces_droits": 45, "sante": 12, "emploi": 15, "habitat": 10, "education": 8, "jeunesse": 10},
     {"oriente": 85, "resolu": 10, "en_cours": 5}, (15, 60)),
    ("concertation", 0.10, ["réunion d'habitants", "fête de quartier", "projet jeunes"],
     {"jeunesse": 3, "espace_public": 3, "habitat": 2, "education": 2}, {}, (60, 150)),
]
# Partners of the demo registry (PARTNERS) that mediators hand people over to, by domain.
HANDOFF_PARTNERS = {"acces_droits": ["A07", "A06", "A10"], "sante": ["A15"], "emploi": ["A13"],
                    "habitat": ["A02", "A16"], "education": ["A04", "A05"], "jeunesse": ["A10", "A12", "A13"]}
# Services notified by technical watch, with their median resolution delay (days).
WATCH_SERVICES = {"Habitat Lys (bailleur)": 9, "Services techniques municipaux": 14, "Éclairage public": 6,
                  "Propreté urbaine": 3, "Lysbus (transports)": 20, "Logis du Val (bailleur)": 30}
ACTIVITY_WEEKDAYS = [0.8, 0.9, 1.1, 0.9, 1.2, 1.3, 0.5]
ACTIVITY_MONTHS = [0.8, 0.85, 0.95, 1.0, 1.05, 1.15, 1.4, 1.3, 1.0, 0.95, 0.9, 1.25]
ACTIVITY_HOURS = {9: 2, 10: 4, 11: 5, 12: 2, 13: 2, 14: 5, 15: 6, 16: 9, 17: 11, 18: 12, 19: 10, 20: 8, 21: 5, 22: 2}
# Where: QPV (or None outside), weight; QN09902B is covered from March only (new team).
ACTIVITY_PLACES = [("QN09901A", 0.42), ("QN09902B", 0.16), ("QN09903C", 0.22), (None, 0.20)]


def _activity_point(rng: np.random.Generator, shape, spread: float) -> Point:
    """A point in ``shape``, drawn near one of two fixed hot spots (a square, a bus stop) or anywhere."""
    minx, miny, maxx, maxy = shape.bounds
    centre = shape.representative_point()
    spots = [(centre.x, centre.y), ((centre.x + minx) / 2, (centre.y + maxy) / 2)]
    while True:
        if rng.random() < 0.6:
            sx, sy = spots[int(rng.integers(0, 2))]
            p = Point(rng.normal(sx, spread), rng.normal(sy, spread))
        else:
            p = Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if shape.contains(p):
            return p


def _activity(rng: np.random.Generator, communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame) -> pd.DataFrame:
    """A year (2025) of a mediation service's activity log, in the template's format.

    Evenings, Fridays and Saturdays, summer and December are busier; the Hauts
    de Lys get most of the presence; a third of the entries give only the QPV code.
    """
    shapes = qpv.dissolve(by="code_qp").geometry
    towns = communes.set_index("code").geometry
    days = pd.date_range("2025-01-01", "2025-12-31", freq="D")
    rate = 6.2 * np.array([ACTIVITY_WEEKDAYS[d.weekday()] * ACTIVITY_MONTHS[d.month - 1] for d in days])
    hours, hour_w = list(ACTIVITY_HOURS), np.array(list(ACTIVITY_HOURS.values()), dtype=float)
    rows = []
    for day, n in zip(days, rng.poisson(rate)):
        for _ in range(n):
            evening = day.weekday() >= 4 or day.month in (7, 8)
            weights = hour_w * np.where(np.array(hours) >= 19, 1.8 if evening else 1.0, 1.0)
            kind, _, subtypes, domains, outcomes, (lo, hi) = ACTIVITY_MIX[
                rng.choice(len(ACTIVITY_MIX), p=[a[1] for a in ACTIVITY_MIX])]
            place_w = np.array([w if not (code == "QN09902B" and day.month < 3) else 0 for code, w in ACTIVITY_PLACES])
            code = ACTIVITY_PLACES[rng.choice(len(ACTIVITY_PLACES), p=place_w / place_w.sum())][0]
            point = None
            if code is None:
                town = str(rng.choice(["99101", "99103", "99102"], p=[0.7, 0.25, 0.05]))
                point = _activity_point(rng, towns[town], 400)
            elif rng.random() < 0.65:
                point = _activity_point(rng, shapes[code], 60)
            domain = str(rng.choice(list(domains), p=np.array(list(domains.values())) / sum(domains.values())))
            subtype = str(rng.choice(subtypes))
            outcome = str(rng.choice(list(outcomes), p=np.array(list(outcomes.values())) / sum(outcomes.values()))) if outcomes else ""
            row = {"date": day.strftime("%Y-%m-%d"),
                   "heure": f"{int(rng.choice(hours, p=weights / weights.sum())):02d}:{int(rng.choice([0, 15, 30, 45])):02d}",
                   "duree_min": int(rng.integers(lo // 5, hi // 5 + 1)) * 5, "qpv": code or "", "point": point,
                   "activite": kind, "sous_type": subtype, "domaine": domain, "public": "", "partenaire": "",
                   "issue": outcome, "service_signale": "", "date_signalement": "", "date_resolution": "",
                   "operateur": "Lys Médiation"}
            if kind == "mise_en_relation":
                row["partenaire"] = str(rng.choice(HANDOFF_PARTNERS[domain]))
            elif kind == "conflit" and subtype == "table_ronde" and domain == "habitat":
                row["partenaire"] = "A02"
            if kind == "veille" and subtype == "technique":
                service = str(rng.choice(list(WATCH_SERVICES)))
                reported = day + pd.Timedelta(days=int(rng.integers(0, 2)))
                delay = int(np.ceil(rng.lognormal(np.log(WATCH_SERVICES[service]), 0.6)))
                resolved = reported + pd.Timedelta(days=delay)
                done = rng.random() > 0.12 and resolved <= pd.Timestamp("2026-01-15")
                row |= {"service_signale": service, "date_signalement": reported.strftime("%Y-%m-%d"),
                        "date_resolution": resolved.strftime("%Y-%m-%d") if done else "",
                        "issue": "resolu" if done else str(rng.choice(["en_cours", "sans_suite"], p=[0.8, 0.2]))}
            row["public"] = str(rng.choice(["habitants", "jeunes", "familles", "locataires", "commerçants", "seniors"]))
            rows.append(row)
    frame = pd.DataFrame(rows)
    located = frame["point"].notna()
    wgs = gpd.GeoSeries(list(frame.loc[located, "point"]), index=frame.index[located], crs="EPSG:2154").to_crs("EPSG:4326")
    frame["latitude"] = wgs.y.map("{:.6f}".format).reindex(frame.index).fillna("")
    frame["longitude"] = wgs.x.map("{:.6f}".format).reindex(frame.index).fillna("")
    columns = ["date", "heure", "duree_min", "qpv", "latitude", "longitude", "activite", "sous_type", "domaine",
               "public", "partenaire", "issue", "service_signale", "date_signalement", "date_resolution", "operateur"]
    return frame[columns]


# Residents' questionnaire (KoboToolbox export of templates/questionnaire_habitants.xlsx): choices ticked per QPV.
# The Hauts de Lys' public-space complaints come from the marches and questionnaires of observations.csv.
SURVEY_CHOICES = {
    "QN09901A": {"bruit_halls": 5, "voisinage": 3, "jeunes": 4, "demarches": 4, "isolement": 2, "ecole": 2, "bus": 1},
    "QN09902B": {"eclairage": 3, "proprete": 4, "insecurite": 3, "isolement": 4, "demarches": 3, "jeunes": 1},
    "QN09903C": {"bus": 6, "insecurite": 3, "eclairage": 2, "jeunes": 3, "ecole": 3, "demarches": 2},
}
SURVEY_PLACES = [("QN09901A", 42), ("QN09902B", 28), ("QN09903C", 40), ("autre", 5), ("", 3)]
SURVEY_COMMENTS = {
    "bruit_halls": "Les halls sont occupés tous les soirs, on n'ose plus rentrer tard.",
    "voisinage": "Les disputes entre voisins pour le bruit durent depuis des mois.",
    "jeunes": "Les jeunes n'ont nulle part où aller le soir, le city-stade ferme trop tôt.",
    "demarches": "Depuis que tout se fait sur internet, je n'arrive plus à faire mes papiers.",
    "isolement": "Ma voisine âgée ne sort plus, personne ne passe la voir.",
    "ecole": "Il y a souvent des tensions à la sortie du collège.",
    "bus": "À l'arrêt de bus de La Garenne, les chauffeurs se font insulter le soir.",
    "eclairage": "La rue est très sombre, plusieurs lampadaires sont en panne.",
    "proprete": "Les dépôts sauvages s'accumulent derrière les commerces.",
    "insecurite": "Je fais un détour pour éviter la place le soir.",
}
AGES = ["moins_25", "25_44", "45_64", "65_plus"]


def _questionnaire(rng: np.random.Generator, qpv: gpd.GeoDataFrame) -> pd.DataFrame:
    """About 120 answers to the residents' questionnaire, as KoboToolbox exports them (CSV, « ; »).

    Most answers carry the phone's position (``_lieu_latitude`` / ``_lieu_longitude``); a few name
    a place outside the territory (« autre »), two were recorded far away, three give no place.
    Positions fall in the Villeneuve part of each QPV (Mont-Clair stays a commune nobody was asked in).
    """
    shapes = qpv[qpv["insee_com"] == "99101"].set_index("code_qp").geometry
    rows = []
    places = [code for code, n in SURVEY_PLACES for _ in range(n)]
    for i in rng.permutation(len(places)):
        code = places[int(i)]
        n = len(rows) + 1
        when = (pd.Timestamp("2025-03-03") + pd.Timedelta(days=int(rng.integers(0, 80)))
                + pd.Timedelta(minutes=int(rng.integers(8 * 60, 21 * 60))))
        choices = SURVEY_CHOICES.get(code, SURVEY_CHOICES["QN09901A"])
        keys, weights = list(choices), np.array(list(choices.values()), dtype=float)
        picked = sorted(rng.choice(keys, size=int(rng.integers(1, 4)), replace=False, p=weights / weights.sum()),
                        key=keys.index)
        if code in ("autre", "") and rng.random() < 0.5:
            picked = ["aucun"]
        lat = lon = ""
        if code in shapes.index and rng.random() < 0.6:
            p = gpd.GeoSeries(_points_in(rng, shapes[code], 1, inset=15), crs="EPSG:2154").to_crs("EPSG:4326")[0]
            lat, lon = f"{p.y:.6f}", f"{p.x:.6f}"
        elif code == "" and n % 2:
            lat, lon = "48.856600", "2.352200"  # recorded far from the territory
        comment = SURVEY_COMMENTS.get(picked[0], "") if rng.random() < 0.3 else ""
        start = when - pd.Timedelta(minutes=int(rng.integers(3, 12)))
        rows.append({
            "start": start.strftime("%Y-%m-%dT%H:%M:%S.000+01:00"), "end": when.strftime("%Y-%m-%dT%H:%M:%S.000+01:00"),
            "quartier": code, "lieu": f"{lat} {lon} 0 8" if lat else "", "_lieu_latitude": lat,
            "_lieu_longitude": lon, "_lieu_altitude": "0" if lat else "", "_lieu_precision": "8" if lat else "",
            "problemes": " ".join(picked), "tranche_age": str(rng.choice(AGES)), "commentaire": comment,
            "_id": str(41_000 + n), "_submission_time": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "_validation_status": "", "_index": str(n),
        })
    return pd.DataFrame(rows)


# The marche exploratoire of La Garenne – Les Tilleuls (17 April 2025): stops along the route, with comments.
WALK_STOPS = [
    ("Départ – école Les Tilleuls", "Rassemblement devant l'école ; la sortie des classes est encombrée."),
    ("Arrêt de bus La Garenne", "Abribus cassé, les habitantes disent ne plus attendre le bus ici après 20 h."),
    ("Passage sous la voie", "Passage très sombre, aucun éclairage : sentiment de peur."),
    ("Placette des Tilleuls", "Regroupements le soir, bruit signalé par les riverains."),
    ("City-stade", "Les jeunes occupent le city-stade jusqu'à tard ; conflits avec les familles."),
    ("Allée des Peupliers", "Dépôts sauvages et poubelles renversées."),
    ("Jardin partagé", "Lieu apprécié, à préserver et à faire connaître."),
    ("Chemin du collège", "Trottoir étroit, voitures garées : stationnement gênant pour les piétons."),
    ("Arrêt de bus Les Tilleuls", "Incivilités dans le bus de soirée, les chauffeurs demandent de la présence."),
    ("Arrivée – maison de quartier", "Lampadaires en panne sur tout le parvis."),
]


def _marche(rng: np.random.Generator, qpv: gpd.GeoDataFrame) -> str:
    """The walk as OsmAnd records it: a GPX track with timed points and one waypoint per stop.

    The walk loops through the Villeneuve part of La Garenne – Les Tilleuls.
    """
    import gpxpy.gpx

    shape = qpv[(qpv["code_qp"] == "QN09903C") & (qpv["insee_com"] == "99101")].geometry.iloc[0]
    centre = shape.centroid
    stops = sorted(_points_in(rng, shape, len(WALK_STOPS), inset=15),
                   key=lambda p: float(np.arctan2(p.y - centre.y, p.x - centre.x)))
    wgs = list(gpd.GeoSeries(stops, crs="EPSG:2154").to_crs("EPSG:4326"))
    track_pts = []
    for a, b in itertools.pairwise(stops):
        for t in np.linspace(0, 1, 4, endpoint=False):
            track_pts.append(Point(a.x + (b.x - a.x) * t + rng.normal(0, 4), a.y + (b.y - a.y) * t + rng.normal(0, 4)))
    track_pts.append(stops[-1])
    track_wgs = list(gpd.GeoSeries(track_pts, crs="EPSG:2154").to_crs("EPSG:4326"))
    start = pd.Timestamp("2025-04-17 18:00").to_pydatetime()
    gpx = gpxpy.gpx.GPX()
    gpx.creator = "OsmAnd (données fictives)"
    gpx.name = "Marche exploratoire La Garenne – Les Tilleuls"
    track = gpxpy.gpx.GPXTrack(name=gpx.name)
    segment = gpxpy.gpx.GPXTrackSegment()
    for k, p in enumerate(track_wgs):
        segment.points.append(gpxpy.gpx.GPXTrackPoint(round(p.y, 6), round(p.x, 6),
                                                      time=start + pd.Timedelta(minutes=2 * k).to_pytimedelta()))
    track.segments.append(segment)
    gpx.tracks.append(track)
    for k, ((name, comment), p) in enumerate(zip(WALK_STOPS, wgs)):
        gpx.waypoints.append(gpxpy.gpx.GPXWaypoint(round(p.y, 6), round(p.x, 6), name=name, comment=comment,
                                                   time=start + pd.Timedelta(minutes=8 * k).to_pytimedelta()))
    return gpx.to_xml(version="1.1")


MEETING_NOTE = """---
date: 2025-04-10
type: réunion
titre: Conseil citoyen du Centre Ancien
qpv: QN09902B
participants: {habitants: 9, commune: 1, centre social: 1, association: 1}
themes:
  - {domaine: espace_public, type_probleme: conflits_usage}
  - {domaine: sante, type_probleme: isolement}
  - {domaine: acces_droits, type_probleme: non_recours_droits}
---
Réunion ouverte du conseil citoyen, salle de la mairie annexe (données fictives).

Les habitants décrivent les terrasses et les livraisons qui se disputent la place du Marché, et des
personnes âgées qui ne sortent plus depuis la fermeture de l'épicerie.

> On se parle moins qu'avant, les anciens restent chez eux.
> Pour les papiers, il faut attendre le fils ou la voisine.
"""
PARTNER_MEETINGS = pd.DataFrame([{
    "date": "2025-05-06", "type": "réunion", "titre": "Cellule de veille du CLSPD – secteur La Garenne",
    "qpv": "QN09903C", "participants": "bailleur: 2 | transport: 1 | police: 1 | commune: 1 | mediation: 1",
    "themes": "transports/incivilites_transports | jeunesse/conflits_usage | education/decrochage_scolaire",
    "citations": "Sur la ligne 4, trois chauffeurs ont demandé à ne plus faire le service du soir.",
}])


# A mediation structure's shared diagnostic (« Lys Médiation »), answered in November 2025 and a year later by
# 1 director, 2 supervisors, 7 mediators and 4 partners, with its anonymised staff table each year. Levels are
# drawn around a mean per viewpoint and theme (grid order: ETH ACT REC FOR SUP PAR SEC SUI GOU); the director
# and supervisors rate ethics higher than the mediators do, supervision and training start low and progress,
# safety stays a gap.
STRUCTURE_VIEWPOINTS = [("direction", 1), ("encadrement", 2), ("mediateurs", 7), ("partenaires", 4)]
STRUCTURE_LEVELS = {
    2025: {"direction": [3.7, 3.2, 3.0, 2.4, 1.8, 3.2, 2.6, 2.3, 3.2],
           "encadrement": [3.5, 3.0, 2.8, 2.2, 1.7, 3.1, 2.4, 2.2, 3.0],
           "mediateurs": [2.2, 3.1, 2.4, 1.9, 1.4, 3.0, 2.1, 2.0, 2.6],
           "partenaires": [3.0, 3.2, None, 2.3, None, 3.3, None, 2.1, 3.0]},
    2026: {"direction": [3.7, 3.3, 3.1, 3.1, 3.0, 3.3, 2.5, 2.9, 3.3],
           "encadrement": [3.6, 3.2, 3.0, 3.0, 2.9, 3.2, 2.4, 2.8, 3.2],
           "mediateurs": [3.1, 3.2, 2.6, 2.8, 2.7, 3.1, 1.9, 2.6, 2.8],
           "partenaires": [3.2, 3.3, None, 2.7, None, 3.4, None, 2.6, 3.1]},
}
#: How the structure updated the first plan before the second assessment (its numbers are the grid's actions).
STRUCTURE_PLAN_STATES = [("SUP-1", "réalisée", "Intervenante extérieure depuis février, une séance par mois."),
                         ("FOR-1", "en cours", "Plan adopté ; parcours de qualification à engager."),
                         ("SUI-1", "réalisée", ""), ("SEC-1", "en cours", ""), ("ETH-D", "à faire", "")]
STRUCTURE_STAFF = {  # poste, contrat, seniority (years), training hours, analysis-of-practice hours (2025, 2026)
    2025: [("Directrice", "CDI", 9, 12, 0), ("Cheffe de service", "CDI", 6, 14, 0), ("Coordinateur", "CDI", 4, 7, 0)]
          + [("Médiateur social", "adulte-relais", y, h, a) for y, h, a in
             [(1, 7, 0), (2, 0, 0), (3, 14, 4), (1, 7, 0), (5, 7, 2)]]
          + [("Médiatrice sociale", "CDI", y, h, a) for y, h, a in [(6, 21, 4), (4, 7, 0)]],
    2026: [("Directrice", "CDI", 10, 14, 6), ("Cheffe de service", "CDI", 7, 21, 12), ("Coordinateur", "CDI", 5, 21, 12)]
          + [("Médiateur social", "adulte-relais", y, h, a) for y, h, a in
             [(2, 21, 12), (3, 14, 12), (4, 35, 12), (1, 21, 10), (6, 14, 12)]]
          + [("Médiatrice sociale", "CDI", y, h, a) for y, h, a in [(7, 28, 12), (5, 21, 12)]],
}


def _structure_answers(rng: np.random.Generator, year: int) -> pd.DataFrame:
    """The self-assessment answers of one year as a form tool exports them (« ; »): one row per respondent."""
    import yaml

    from diagnostic import resources

    grid = yaml.safe_load(resources.path("rules/grille_structure.yaml").read_text(encoding="utf-8"))
    rows = []
    for viewpoint, n in STRUCTURE_VIEWPOINTS:
        for _ in range(n):
            row = {"_id": str((7000 if year == 2025 else 7100) + len(rows)),
                   "_submission_time": f"{year}-11-{int(rng.integers(3, 14)):02d}T{int(rng.integers(9, 19)):02d}:00:00",
                   "point_de_vue": viewpoint}
            for mean, theme in zip(STRUCTURE_LEVELS[year][viewpoint], grid["themes"]):
                for criterion in theme["criteres"]:
                    if mean is None or rng.random() < 0.05:
                        row[criterion["code"]] = "ne sait pas" if mean is None else ""
                    else:
                        row[criterion["code"]] = str(int(np.clip(np.rint(rng.normal(mean, 0.5)), 1, 4)))
            rows.append(row)
    return pd.DataFrame(rows)


def _structure_staff(year: int) -> pd.DataFrame:
    return pd.DataFrame(STRUCTURE_STAFF[year], columns=["poste", "contrat", "anciennete_annees", "heures_formation",
                                                        "heures_analyse_pratique"])


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """GeoJSON in WGS84 with coordinates rounded to about 1 m, as the official files are."""
    out = gdf.to_crs("EPSG:4326")
    out = out.set_geometry(shapely.set_precision(out.geometry.values, 1e-5))
    path.write_text(out.to_json(drop_id=True, ensure_ascii=False), encoding="utf-8")


def write_demo(dest: Path = DEMO_DIR, seed: int = SEED) -> list[Path]:
    """Write every demo file into ``dest``; the same seed gives the same bytes."""
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    communes = _communes(rng)
    qpv = _qpvs(rng, communes)
    written: list[Path] = []

    def save(name: str, frame, **kw) -> None:
        path = dest / name
        if isinstance(frame, gpd.GeoDataFrame):
            _write_geojson(frame, path)
        else:
            frame.to_csv(path, index=False, lineterminator="\n", **kw)
        written.append(path)

    save("communes.geojson", communes)
    save("qpv_2024.geojson", qpv)
    qpv_ind, populations, filo = _indicators()
    save("qpv_indicateurs.csv", qpv_ind)
    save("populations_legales.csv", populations, sep=";")
    save("filosofi_communes.csv", filo, sep=";")
    save("bpe.csv", _bpe(rng, communes), sep=";")
    save("france_services.csv", _france_services(communes))
    save("services_locaux.csv", _catalog_services(communes))
    posts, cv = _adultes_relais(rng)
    save("adultes_relais.csv", posts)
    save("contrats_de_ville.geojson", cv)
    save("observations.csv", _observations(np.random.default_rng(seed + 3)), sep=";")
    actors, relations = _partners(communes)
    save("partenaires.csv", actors, sep=";")
    save("partenaires_relations.csv", relations, sep=";")
    save("journal_activite.csv", _activity(np.random.default_rng(seed + 9), communes, qpv), sep=";")
    save("questionnaire_habitants.csv", _questionnaire(np.random.default_rng(seed + 11), qpv), sep=";")
    for name, text in (("marche_garenne_tilleuls.gpx", _marche(np.random.default_rng(seed + 13), qpv)),
                       ("reunion_conseil_citoyen.md", MEETING_NOTE)):
        (dest / name).write_text(text, encoding="utf-8")
        written.append(dest / name)
    save("reunions_partenaires.csv", PARTNER_MEETINGS, sep=";")
    for year in (2025, 2026):
        save(f"structure_{year}_reponses.csv", _structure_answers(np.random.default_rng(seed + year), year), sep=";")
        save(f"structure_{year}_personnel.csv", _structure_staff(year), sep=";")
    save("structure_2026_plan_suivi.csv", pd.DataFrame(STRUCTURE_PLAN_STATES, columns=["N°", "État", "Commentaire"]),
         sep=";")
    manifest = {"seed": seed, "files": sorted(p.name for p in written), "fictif": True}
    (dest / "GENERE.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return written


if __name__ == "__main__":
    for p in write_demo():
        print(p)
