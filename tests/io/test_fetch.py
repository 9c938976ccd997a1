"""``diagnostic data fetch`` against files shaped like the real publications, on a 127.0.0.1 HTTP server.

The served files are built from real rows of ``../shared/data/real`` and packaged under the names and
structure the producers publish today: the communes layer as gzipped GeoJSON (with the arrondissements of
Lyon on top of their commune), the QPV 2024 zip holding several GeoJSON files under ``GEOJSON/`` and
shapefiles in local projections, populations in ``ensemble.zip``, Filosofi in INSEE's long layout, the BPE
as parquet with a per-row ``EPSG`` (and overseas rows in their own system), France Services and adultes-relais
posts through a fake data.gouv.fr API, the EPCI workbook inside INSEE's zip. What the extracts do not hold is
marked synthetic where it is built.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyproj import Transformer
from shapely.geometry import box

from diagnostic import cli
from diagnostic.errors import FetchError, ParameterError
from diagnostic.io import fetch
from diagnostic.io.catalog import Source
from diagnostic.io.fetch import datagouv
from diagnostic.io.fetch.check import check_sources, describe_check
from diagnostic.io.fetch.extract import read_geo_filtered, write_workbook
from diagnostic.io.fetch.sources import SOURCES_FILE, SOURCES_URL_ENV
from diagnostic.io.fetch.territory import territory_filter
from diagnostic.io.sources.bpe import load_bpe
from diagnostic.io.sources.communes import load_communes
from diagnostic.io.sources.insee import load_indicator_table
from diagnostic.io.territory import load_territory
from tests.util import REAL

pytestmark = pytest.mark.skipif(
    not (REAL / "PROVENANCE.md").exists(),
    reason=f"extraits réels absents ({REAL}) : les fichiers servis sont faits de leurs lignes",
)

FS_DATASET = "liste-des-structures-france-services"
AR_DATASET = "subventions-politique-de-la-ville"
QPV_MEMBER = "GEOJSON/QP2024_France_Hexagonale_Outre_Mer_WGS84.geojson"
SERVED_DATE = "Wed, 01 Jul 2026 08:00:00 GMT"
#: Wide Filosofi 2021 columns → measures of INSEE's long layout (geo2025 file).
FILOSOFI_MEASURES = {
    "NBMENFISC21": ("NUM_HH", "NB"), "NBPERSMENFISC21": ("NUM_PER", "NB"), "MED21": ("MED_SL", "EUR_YR"),
    "PIMP21": ("S_HH_TAX", "PT"), "TP6021": ("PR_MD60", "PT"), "PACT21": ("S_EI_DI", "PT"),
    "PTSA21": ("S_EI_DI_SAL", "PT"), "PCHO21": ("S_EI_DI_UNE", "PT"), "PBEN21": ("S_EI_DI_N_SAL", "PT"),
    "PPEN21": ("S_RET_PEN_DI", "PT"), "PPAT21": ("S_INC_ASS_DI", "PT"), "PPSOC21": ("S_SOC_BEN_DI", "PT"),
    "PPFAM21": ("S_SOC_BEN_DI_FAM_BEN", "PT"), "PPMINI21": ("S_SOC_BEN_DI_MIN_SOC", "PT"),
    "PPLOGT21": ("S_SOC_BEN_DI_HOU_BEN", "PT"), "PIMPOT21": ("S_DIR_TAX_DI", "PT"), "D121": ("D1_SL", "EUR_YR"),
    "D921": ("D9_SL", "EUR_YR"), "RD21": ("IR_D9_D1_SL", "NR"),
}
#: Synthetic overseas equipment (no overseas row in the extracts): commune, EPSG, longitude, latitude.
OVERSEAS = [("97411", 2975, 55.4481, -20.8823), ("97209", 5490, -61.0588, 14.6161)]
#: Synthetic outline of Lyon (no real one in the extracts), split in a 3×3 grid of arrondissements.
LYON = (4.79, 45.70, 4.91, 45.82)


# ---------------------------------------------------------------------------------------------------------
# Publication-shaped files, from real rows


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return out.getvalue()


def lyon_layer(with_commune: bool = True) -> gpd.GeoDataFrame:
    """Lyon and its nine arrondissements as the Etalab layer holds them (synthetic squares)."""
    x0, y0, x1, y1 = LYON
    dx, dy = (x1 - x0) / 3, (y1 - y0) / 3
    rows = [{"code": str(69381 + i), "nom": f"Lyon {i + 1}e Arrondissement", "departement": "69", "region": "84",
             "plm": False, "commune": "69123",
             "geometry": box(x0 + dx * (i % 3), y0 + dy * (i // 3), x0 + dx * (i % 3 + 1), y0 + dy * (i // 3 + 1))}
            for i in range(9)]
    if with_commune:
        rows.insert(0, {"code": "69123", "nom": "Lyon", "departement": "69", "region": "84", "plm": True,
                        "commune": None, "geometry": box(*LYON)})
    return gpd.GeoDataFrame(rows, crs="EPSG:4326")


def communes_layer() -> bytes:
    """``communes-100m.geojson.gz``: real HdF outlines of 59 and 62 (Admin Express), Etalab properties."""
    gdf = gpd.read_file(REAL / "hdf_communes_2018.geojson")
    gdf = gdf[gdf["code"].str[:2].isin(["59", "62"])]
    gdf = gdf.assign(departement=gdf["code"].str[:2], region="32", plm=False, commune=None)
    layer = pd.concat([gdf[["code", "nom", "departement", "region", "plm", "commune", "geometry"]], lyon_layer()])
    return gzip.compress(gpd.GeoDataFrame(layer, crs="EPSG:4326").to_json().encode(), mtime=0)


def qpv_archive(folder: Path) -> bytes:
    """``qpv-2024-geojson.zip``: real Rouen 2024 outlines with the ANCT fields, in several files.

    ``insee_com`` and ``siren_epci`` are left empty (the extract gives commune names only) and half
    of ``insee_reg`` is null, as in the published file.
    """
    raw = gpd.read_file(REAL / "qpv2024" / "rouen_qpv2024_contours.geojson")
    gdf = gpd.GeoDataFrame({
        "fid": raw["FID_1"].astype(int), "code_qp": raw["IDENTIFIAN"], "lib_qp": raw["LIBELLE"],
        "insee_reg": ["28" if i % 2 else None for i in range(len(raw))], "lib_reg": "Normandie",
        "insee_dep": "76", "lib_dep": "Seine-Maritime", "insee_com": "", "lib_com": raw["COMMUNE_AG"],
        "siren_epci": "",
    }, geometry=raw.geometry, crs="EPSG:4326")
    lb93 = gdf.to_crs("EPSG:2154")
    members = {QPV_MEMBER: gdf.to_json().encode(),
               "GEOJSON/QP2024_France_Hexagonale_LB93.geojson": lb93.to_json().encode()}
    shp = folder / "SHP"
    shp.mkdir()
    lb93.to_file(shp / "QP2024_France_Hexagonale_LB93.shp")
    members.update({f"SHP/{part.name}": part.read_bytes() for part in sorted(shp.iterdir())})
    return _zip(members)


def populations_archive() -> bytes:
    """``ensemble.zip``: the real ``donnees_communes.csv`` beside a departments table."""
    communes = (REAL / "hdf_populations_legales_communes.csv").read_bytes()
    df = pd.read_csv(io.BytesIO(communes), sep=";", dtype=str)
    deps = df.assign(PMUN=df["PMUN"].astype(int)).groupby(["REG", "DEP"], as_index=False)["PMUN"].sum()
    return _zip({"donnees_communes.csv": communes, "donnees_departements.csv": deps.to_csv(sep=";", index=False).encode()})


def filosofi_long() -> str:
    """``DS_FILOSOFI_CC_data.csv``: the real wide Filosofi 2021 rows in INSEE's long layout.

    A secret value (``s``) is an empty ``OBS_VALUE`` with ``CONF_STATUS`` C; values use a decimal point.
    """
    wide = pd.read_csv(REAL / "hdf_filosofi_2021_communes.csv", sep=";", dtype=str, keep_default_na=False)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["GEO", "GEO_OBJECT", "FILOSOFI_MEASURE", "UNIT_MEASURE", "UNIT_MULT", "CONF_STATUS",
                     "OBS_STATUS", "TIME_PERIOD", "OBS_VALUE"])
    for row in wide.itertuples(index=False):
        values = row._asdict()
        for column, (measure, unit) in FILOSOFI_MEASURES.items():
            value = values[column].strip()
            secret = value == "s"
            writer.writerow([values["CODGEO"], "COM", measure, unit, "0", "C" if secret else "F", "A", "2021",
                             "" if secret else value.replace(",", ".")])
    return out.getvalue()


def filosofi_archives() -> dict[str, bytes]:
    """The geo2025 long archive and the geo2024 wide one (real ``cc_filosofi_2021_COM.csv``)."""
    metadata = "COD_VAR;LIB_VAR;COD_MOD;LIB_MOD\nFILOSOFI_MEASURE;Mesure;MED_SL;Médiane du niveau de vie\n"
    return {
        "base-cc-filosofi-2021-geo2025_csv.zip": _zip({"DS_FILOSOFI_CC_data.csv": filosofi_long().encode(),
                                                       "DS_FILOSOFI_CC_metadata.csv": metadata.encode()}),
        "base-cc-filosofi-2021-geo2024_csv.zip": _zip({
            "cc_filosofi_2021_COM.csv": (REAL / "hdf_filosofi_2021_communes.csv").read_bytes(),
            "meta_cc_filosofi_2021_COM.csv": "COD_VAR;LIB_VAR\nMED21;Médiane du niveau de vie\n".encode()}),
    }


def bpe_table() -> pd.DataFrame:
    """The real BPE detail sample of HdF in the BPE 2024/2025 layout, plus synthetic overseas rows.

    Overseas rows have their coordinates in their own UTM (``EPSG`` 2975, 5490); one row has no
    coordinates and one no ``EPSG``, both to be set aside and counted.
    """
    raw = pd.read_csv(REAL / "bpe" / "bpe21_detail_echantillon_hdf.csv", sep=";", dtype=str)
    rows = pd.DataFrame({
        "AN": raw["REF_YEAR"], "NOMRS": "", "DEPCOM": raw["DEPCOM"], "DEP": raw["DEPCOM"].str[:2], "REG": "32",
        "DOM": raw["TYPEQU"].str[0], "SDOM": raw["TYPEQU"].str[:2], "TYPEQU": raw["TYPEQU"],
        "LAMBERT_X": raw["LAMBERT_X"].astype(float), "LAMBERT_Y": raw["LAMBERT_Y"].astype(float),
        "EPSG": 2154, "QUALITE_XY": "Bonne",
    })
    extra = []
    for com, epsg, lon, lat in OVERSEAS:
        x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)
        extra.append({"AN": "2021", "NOMRS": "", "DEPCOM": com, "DEP": com[:3], "REG": "0" + com[2],
                      "DOM": "D", "SDOM": "D1", "TYPEQU": "D101", "LAMBERT_X": x, "LAMBERT_Y": y, "EPSG": epsg,
                      "QUALITE_XY": "Bonne"})
    extra.append({**extra[0], "LAMBERT_X": None, "LAMBERT_Y": None, "QUALITE_XY": "Non géolocalisé"})
    extra.append({**extra[1], "EPSG": None})
    table = pd.concat([rows, pd.DataFrame(extra)], ignore_index=True)
    return table.astype({"EPSG": "Int64"})


def epci_archive() -> bytes:
    """``epci_au_01-01-2026.zip`` holding ``EPCI_au_01-01-2026.xlsx``: the real 2024 workbook (same sheets and layout,
    PROVENANCE.md), under the 2026 names INSEE publishes."""
    return _zip({"EPCI_au_01-01-2026.xlsx": (REAL / "epci" / "EPCI_au_01-01-2024.xlsx").read_bytes()})


def bpe_files() -> dict[str, bytes]:
    """``BPE25.parquet`` and ``BPE24.zip`` (``BPE24.csv``, ``;``) of the same rows."""
    table = bpe_table()
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), out)
    text = table.to_csv(sep=";", index=False)
    return {"BPE25.parquet": out.getvalue(), "BPE24.zip": _zip({"BPE24.csv": text.encode()})}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every published file, under the name the local server serves it."""
    return {
        "communes-100m.geojson.gz": communes_layer(),
        "qpv-2024-geojson.zip": qpv_archive(tmp_path_factory.mktemp("qpv")),
        "ensemble.zip": populations_archive(),
        **filosofi_archives(),
        **bpe_files(),
        "epci_au_01-01-2026.zip": epci_archive(),
        "liste-fs-20240801.csv": (REAL / "france_services_hdf_20240801.csv").read_bytes(),
        "adultes_relais_postes.csv": (REAL / "adultes_relais_postes_hdf_2020_2023.csv").read_bytes(),
    }


# ---------------------------------------------------------------------------------------------------------
# The data.gouv.fr API and the HTTP server


def _resource(base: str, title: str, name: str, fmt: str, modified: str, **more) -> dict:
    """A resource as the data.gouv.fr API describes it (``main``, uploaded, unless told otherwise)."""
    return {"title": title, "url": f"{base}/{name}", "format": fmt, "last_modified": modified, "type": "main",
            "filetype": "file", **more}


def api_files(base: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """The API answers for the two datasets, pointing at files of the local server.

    Traps: a documentation resource and an update note whose titles match the patterns and are the
    newest; the adultes-relais file is ``remote`` with a checksum that does not match what is served.
    """
    sha1 = {"type": "sha1", "value": hashlib.sha1(files["liste-fs-20240801.csv"]).hexdigest()}
    france_services = [
        _resource(base, "Liste des structures France services (juillet 2024)", "liste-fs-20240701.csv", "csv",
                  "2024-07-01T09:00:00+00:00"),
        _resource(base, "Liste des structures France services", "liste-fs-20240801.csv", "csv",
                  "2024-08-01T09:30:00.120000+00:00", checksum=sha1),
        _resource(base, "Liste des structures France services (tableur)", "liste-fs-20240901.xlsx", "xlsx",
                  "2024-09-01T09:00:00+00:00"),
        _resource(base, "Liste des structures France services : description des champs", "schema-france-services.csv",
                  "csv", "2024-10-01T09:00:00+00:00", type="documentation"),
    ]
    adultes_relais = [
        _resource(base, "Subventions politique de la ville 2023", "subventions_2023.csv", "csv", "2024-05-02T08:00:00"),
        _resource(base, "Postes adultes-relais 2022", "adultes_relais_2022.csv", "csv", "2023-04-01T08:00:00"),
        _resource(base, "Postes adultes-relais 2023", "adultes_relais_postes.csv", "csv", "2024-04-03T08:00:00",
                  filetype="remote", checksum={"type": "sha1", "value": "0" * 40}),
        _resource(base, "Postes adultes-relais : note de mise à jour", "adultes_relais_maj.csv", "csv",
                  "2024-06-01T08:00:00", type="update"),
    ]
    datasets = {FS_DATASET: france_services, AR_DATASET: adultes_relais}
    return {f"api/1/datasets/{slug}/": json.dumps(
        {"slug": slug, "page": f"https://www.data.gouv.fr/fr/datasets/{slug}/", "resources": resources}).encode()
        for slug, resources in datasets.items()}


class Server:
    """A 127.0.0.1 HTTP server with Range, HEAD, redirects, chunked transfer and dropped connections."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.chunked: set[str] = set()
        self.drop_after: dict[str, int] = {}
        self.redirects: dict[str, tuple[int, str]] = {}
        self.modified: dict[str, str] = {}
        self.no_head: set[str] = set()
        #: Every request as (method, name, Range header).
        self.log: list[tuple[str, str, str | None]] = []
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_HEAD(self) -> None:
                if self.path.lstrip("/") in server.no_head:
                    server.log.append(("HEAD", self.path.lstrip("/"), None))
                    self.send_response(405)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                server.log.append(("HEAD" if head else "GET", name, self.headers.get("Range")))
                if name in server.redirects:
                    status, target = server.redirects[name]
                    self.send_response(status)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if name not in server.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = server.files[name]
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                start = 0
                wanted = self.headers.get("Range")
                if wanted and self.headers.get("If-Range", etag) == etag:
                    start, _, end = wanted.removeprefix("bytes=").partition("-")
                    start, stop = int(start), int(end) + 1 if end else len(body)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(body)}")
                    body = body[:stop]
                else:
                    self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", server.modified.get(name, SERVED_DATE))
                rest = body[start:]
                if name in server.chunked and start == 0 and not head:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(rest), 64 * 1024):
                        piece = rest[i:i + 64 * 1024]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                if head:
                    return
                if name in server.drop_after:
                    self.wfile.write(rest[: server.drop_after.pop(name)])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(rest)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.requests if n == name)


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def no_public_api(monkeypatch) -> None:
    """No test reaches the public data.gouv.fr API or a mirror set outside: a closed local port."""
    monkeypatch.setenv(datagouv.DATAGOUV_API_ENV, f"http://127.0.0.1:{closed_port()}/api/1")
    monkeypatch.delenv(SOURCES_URL_ENV, raising=False)


@pytest.fixture
def server(files: dict[str, bytes], monkeypatch):
    srv = Server(files)
    srv.files.update(api_files(srv.url, files))
    srv.chunked.add("communes-100m.geojson.gz")
    srv.thread.start()
    monkeypatch.setenv(datagouv.DATAGOUV_API_ENV, f"{srv.url}/api/1/")
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


LOCAL_NAMES = {"communes": "communes-100m.geojson.gz", "qpv": "qpv-2024-geojson.zip", "populations": "ensemble.zip",
               "filosofi": "base-cc-filosofi-2021-geo2025_csv.zip", "bpe": "BPE25.parquet",
               "epci": "epci_au_01-01-2026.zip"}


def local_sources(tmp_path: Path, base: str, **changes: dict[str, str]) -> Path:
    """The repository's sources file with every file address on the local server (and row changes).

    France Services and adultes-relais keep their dataset, resolved through the local API.
    """
    with open(SOURCES_FILE, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    for row in rows:
        if row["cle"] in LOCAL_NAMES:
            row["url"] = f"{base}/{LOCAL_NAMES[row['cle']]}"
        row.update(changes.get(row["cle"], {}))
    out = tmp_path / "sources.csv"
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    return out


def run(tmp_path: Path, sources: Path, dest: str = "out", retries: int = 0, territory: str = "59",
        **kwargs) -> fetch.FetchResult:
    return fetch.fetch(fetch.Territory("department", territory), tmp_path / dest, sources_file=sources,
                       cache=tmp_path / "cache", progress=False, retries=retries, **kwargs)


def failure(tmp_path: Path, sources: Path, *keys: str) -> dict[str, str]:
    """A fetch of the sources ``keys`` (``--only``) where they fail: the catalogue still holds the communes; their
    French reasons. That the others are written beside a failure is tested on a whole fetch below."""
    result = run(tmp_path, sources, only=list(keys))
    assert result.partial and sorted(result.failed) == sorted(keys)
    raw = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))
    written = {Path(e["path"]).stem for entries in raw["sources"].values()
               for e in (entries if isinstance(entries, list) else [entries])}
    assert written == {"communes"}
    for key in keys:
        assert f"# Échec (téléchargement partiel) : {key} — " in result.catalog.read_text(encoding="utf-8")
    return result.failed


def check_output(catalog: Path, capsys) -> str:
    """What ``diagnostic data check`` prints for a catalogue."""
    capsys.readouterr()
    assert cli.main(["data", "check", "--catalog", str(catalog)]) == 0
    return capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------
# End to end


def test_fetch_nord_then_check_then_diagnose_lille(tmp_path: Path, server: Server, capsys) -> None:
    """``data fetch --department 59`` → catalogue → ``data check`` → ``diagnostic run`` on Lille."""
    from diagnostic.pipeline.run import run_commune

    result = run(tmp_path, local_sources(tmp_path, server.url))
    territory = load_territory(result.catalog)
    assert len(territory.communes) == 648 and "59350" in set(territory.communes["insee_com"])
    fs = territory.services[territory.services["source_kind"] == "france_services"]
    assert len(fs) == 52 and (fs["insee_com"] == "59350").sum() == 2  # PROVENANCE.md: 52 in the Nord, 2 in Lille
    raw = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))
    for entries in raw["sources"].values():
        for entry in entries if isinstance(entries, list) else [entries]:
            written = (result.catalog.parent / entry["path"]).read_bytes()
            assert entry["sha256"] == hashlib.sha256(written).hexdigest()
            assert entry["url"].startswith(server.url) and entry["licence"] and entry["vintage"]
            assert entry["source_size"] > 0 and entry["source_modified"] == "2026-07-01"
    assert "qpv" not in raw["sources"]  # the extracts hold no outlines of the Nord: Rouen's only
    assert [note.split(" ")[0] for note in result.notes] == ["qpv", "qpv_indicateurs"]
    services = {e["path"]: e for e in raw["sources"]["services"]}
    assert services["france_services.csv"]["url"] == f"{server.url}/liste-fs-20240801.csv"
    assert services["france_services.csv"]["vintage"] == "2024-08-01"
    assert services["bpe.csv"]["source_file"] == "BPE25.parquet" and services["bpe.csv"]["vintage"] == "2025"
    ar = raw["sources"]["adultes_relais"][0]  # a list: posts of several programmes and vintages
    assert ar["url"] == f"{server.url}/adultes_relais_postes.csv" and ar["vintage"] == "2024-04-03"
    for never in ("liste-fs-20240701.csv", "schema-france-services.csv", "adultes_relais_2022.csv",
                  "adultes_relais_maj.csv"):
        assert server.count(never) == 0, never
    assert raw["sources"]["commune_indicators"][1]["source_file"] == "base-cc-filosofi-2021-geo2025_csv.zip"

    out = check_output(result.catalog, capsys)
    assert "format long de l'INSEE" in out and "Contrôle réussi" in out

    report = run_commune(result.catalog, "59350", tmp_path / "diag")
    saved = json.loads((report.folder / "resultats.json").read_text(encoding="utf-8"))
    assert saved["commune"]["population"] == 236710
    values = {i["indicateur"]: i["valeur"] for i in saved["indicateurs"] if i["territoire"] == "59350"}
    assert values["poverty_rate"] == 27.0 and values["median_income"] == 20520  # PROVENANCE.md, Filosofi 2021
    assert values["menages_fiscaux"] == 96579 and values["population"] == 236710
    layer = gpd.read_file(report.folder / "territoire.gpkg", layer="services")
    assert layer["source_kind"].value_counts().to_dict() == {"bpe_2025": 43, "france_services": 2}
    assert territory.epci_of("59350")["siren"] == "200093201"  # the MEL, from the workbook inside INSEE's zip
    assert raw["sources"]["epci"]["source_file"] == "epci_au_01-01-2026.zip" and raw["sources"]["epci"]["vintage"] == "2026"
    assert result.written["epci.xlsx"] is None and not result.partial

    served = [n for n, _ in server.requests if not n.startswith("api/")]
    run(tmp_path, local_sources(tmp_path, server.url), dest="again")
    again = [n for n, _ in server.requests if not n.startswith("api/")]
    assert again == served, "the second run must use the shared cache"


def test_previous_filosofi_archive_in_columns(tmp_path: Path, server: Server) -> None:
    """``base-cc-filosofi-2021-geo2024_csv.zip`` (``cc_filosofi_2021_COM.csv``) is one line change away."""
    wide = {"url": f"{server.url}/base-cc-filosofi-2021-geo2024_csv.zip", "membre": "cc_filosofi_2021_COM.csv",
            "filtre": "com=CODGEO", "colonnes": "insee_com=CODGEO",
            "indicateurs": "median_income=MED21 poverty_rate=TP6021 social_benefits_share=PPSOC21"}
    result = run(tmp_path, local_sources(tmp_path, server.url, filosofi=wide), only=["filosofi"])
    indicators = load_territory(result.catalog).commune_indicators
    assert indicators.values.loc["59350", "median_income"] == 20520
    assert indicators.values.loc["59512", "poverty_rate"] == 46.0  # Roubaix, PROVENANCE.md


def test_from_dir_reads_the_files_under_their_published_names(tmp_path: Path, files: dict[str, bytes]) -> None:
    """Files downloaded by hand, including the previous BPE (BPE24.zip, CSV inside) and the QPV zip."""
    hand = tmp_path / "telechargements"
    hand.mkdir()
    for name in ["communes-100m.geojson.gz", "qpv-2024-geojson.zip", "ensemble.zip", "BPE24.zip",
                 "base-cc-filosofi-2021-geo2025_csv.zip", "liste-fs-20240801.csv", "adultes_relais_postes.csv",
                 "epci_au_01-01-2026.zip"]:
        (hand / name).write_bytes(files[name])
    result = fetch.fetch(fetch.Territory("region", "32"), tmp_path / "out", from_dir=hand, progress=False)
    territory = load_territory(result.catalog)
    assert len(territory.communes) == 648 + 891
    bpe = territory.services[territory.services["source_kind"].str.startswith("bpe_")]
    assert len(bpe) > 0 and set(bpe["insee_com"].str[:2]) == {"59", "62"}
    assert territory.epci_of("62041")["siren"] == "200033579"  # Arras, CU d'Arras (the xlsx inside the zip)
    assert territory.commune_indicators.values.loc["62041", "median_income"] == 20230
    raw = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))
    assert raw["sources"]["services"][0]["source_file"] == "BPE24.zip"
    assert raw["sources"]["communes"]["source_file"] == "communes-100m.geojson.gz"


# ---------------------------------------------------------------------------------------------------------
# A fetch that keeps what it got


def test_partial_fetch_writes_the_others_then_only_retries_the_failed_one(tmp_path: Path, server: Server,
                                                                       capsys) -> None:
    """Filosofi gone from its address: exit 41, a catalogue with the others that data check passes; --only filosofi
    once it answers again completes the same folder, every other file kept as it was."""
    dest, cache = tmp_path / "nord", tmp_path / "cache"
    gone = local_sources(tmp_path, server.url, filosofi={"url": f"{server.url}/retire/filosofi.zip"})
    command = ["data", "fetch", "--department", "59", "--dest", str(dest), "--cache", str(cache), "--quiet"]
    assert cli.main([*command, "--sources", str(gone)]) == 41
    said = capsys.readouterr()
    assert said.err.startswith("Téléchargement partiel : 1 source(s) sans réponse utilisable ; le catalogue est écrit "
                               "avec les autres.\n  filosofi — Téléchargement impossible : la source « Revenus et "
                               "pauvreté par commune (Filosofi) » (filosofi) n'est plus à son adresse (HTTP 404)")
    assert "--only filosofi" in said.err and "bpe.csv : " in said.out
    catalog = dest / "catalogue.yaml"
    out = check_output(catalog, capsys)
    assert "Contrôle réussi" in out and "Revenus et pauvreté" not in out
    before = {p.name: p.read_bytes() for p in dest.iterdir() if p.name != "catalogue.yaml"}
    assert "filosofi.csv" not in before and {"bpe.csv", "populations.csv", "epci.xlsx"} <= set(before)

    fixed = local_sources(tmp_path, server.url)
    assert cli.main([*command, "--sources", str(fixed), "--only", "filosofi"]) == 0
    assert "bpe : fichier d'un téléchargement précédent gardé" in capsys.readouterr().out
    after = {p.name: p.read_bytes() for p in dest.iterdir() if p.name != "catalogue.yaml"}
    assert set(after) == set(before) | {"filosofi.csv"}
    assert all(after[name] == content for name, content in before.items() if name != "communes.parquet")
    raw = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    assert [e["path"] for e in raw["sources"]["commune_indicators"]] == ["populations.csv", "filosofi.csv"]
    assert "# Échec" not in catalog.read_text(encoding="utf-8")
    filosofi = pd.read_csv(dest / "filosofi.csv", sep=";", dtype=str)
    assert set(filosofi["GEO"].str[:2]) == {"59"} and len(filosofi) > 0


def test_skip_and_unknown_keys(tmp_path: Path, server: Server) -> None:
    result = run(tmp_path, local_sources(tmp_path, server.url), skip=["adultes_relais", "bpe"])
    raw = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))
    assert "adultes_relais" not in raw["sources"] and [e["path"] for e in raw["sources"]["services"]] == [
        "france_services.csv"] and not result.partial
    with pytest.raises(ParameterError, match="source\\(s\\) inconnue\\(s\\) : filosophi") as err:
        run(tmp_path, local_sources(tmp_path, server.url), only=["filosophi"])
    assert "filosofi" in err.value.hint


# ---------------------------------------------------------------------------------------------------------
# What each publication now looks like


def test_epci_workbook_inside_the_zip_is_checked_then_copied(tmp_path: Path, files: dict[str, bytes]) -> None:
    from openpyxl import Workbook

    source = next(s for s in fetch.read_sources() if s.key == "epci")
    (tmp_path / "epci.zip").write_bytes(files["epci_au_01-01-2026.zip"])
    out = write_workbook(tmp_path / "epci.zip", source, tmp_path)
    assert out.read_bytes() == (REAL / "epci" / "EPCI_au_01-01-2024.xlsx").read_bytes()
    book = Workbook()
    book.active.title = "EPCI"
    book.save(tmp_path / "autre.xlsx")  # a workbook without the commune composition sheet
    (tmp_path / "autre.zip").write_bytes(_zip({"EPCI_au_01-01-2026.xlsx": (tmp_path / "autre.xlsx").read_bytes()}))
    (tmp_path / "copie").mkdir()
    with pytest.raises(FetchError, match="feuille « Composition_communale » absente"):
        write_workbook(tmp_path / "autre.zip", source, tmp_path / "copie")
    assert not list((tmp_path / "copie").iterdir())  # nothing half-written left to publish


def test_sources_list_takes_today_s_vintages() -> None:
    sources = {s.key: s for s in fetch.read_sources()}
    assert sources["populations"].vintage == "2023" and "/8680726/" in sources["populations"].url
    assert "retiré" not in sources["communes"].note and "redirigeant" in sources["communes"].note
    assert sources["epci"].format == "xlsx-zip" and sources["epci"].member == "EPCI_au_01-01-2026.xlsx"


def test_qpv_member_chosen_by_name_among_several_files(tmp_path: Path, files: dict[str, bytes]) -> None:
    archive = tmp_path / "qpv-2024-geojson.zip"
    archive.write_bytes(files["qpv-2024-geojson.zip"])
    source = next(s for s in fetch.read_sources() if s.key == "qpv")
    keep = territory_filter(source, fetch.Territory("department", "76"), None)
    qpv = read_geo_filtered(archive, source, keep)
    assert len(qpv) == 16 and qpv["code_qp"].str.match(r"QN076\d\d[A-Z]").all()
    assert qpv.crs.to_epsg() == 4326 and qpv.total_bounds[0] == pytest.approx(1.0, abs=0.1)
    assert qpv["insee_reg"].isna().sum() == 8  # the filter does not need the (sometimes null) region
    unnamed = fetch.OfficialSource(**{**source.__dict__, "member": ""})
    with pytest.raises(FetchError, match="ne contient pas un seul fichier") as err:
        read_geo_filtered(archive, unnamed, keep)
    assert "QP2024_France_Hexagonale_LB93.geojson" in str(err.value)


def test_filosofi_long_layout_gives_the_wide_figures(tmp_path: Path, files: dict[str, bytes]) -> None:
    """Every value and secrecy mark of the long file equals the real wide file's, commune by commune."""
    with zipfile.ZipFile(io.BytesIO(files["base-cc-filosofi-2021-geo2025_csv.zip"])) as archive:
        (tmp_path / "long.csv").write_bytes(archive.read("DS_FILOSOFI_CC_data.csv"))
    wanted = {"median_income": "MED_SL", "poverty_rate": "PR_MD60", "social_benefits_share": "S_SOC_BEN_DI"}
    long, report = load_indicator_table(Source("commune_indicators", tmp_path / "long.csv", columns={"insee_com": "GEO"},
                                               indicators=wanted), "insee_com")
    wide, _ = load_indicator_table(Source("commune_indicators", REAL / "hdf_filosofi_2021_communes.csv",
                                          columns={"insee_com": "CODGEO"},
                                          indicators={"median_income": "MED21", "poverty_rate": "TP6021",
                                                      "social_benefits_share": "PPSOC21"}), "insee_com")
    assert len(long.values) == len(wide.values) == 3788
    pd.testing.assert_frame_equal(long.values.sort_index(), wide.values.sort_index())
    pd.testing.assert_frame_equal(long.secret.sort_index(), wide.secret.sort_index())
    assert long.values.loc["59350", "poverty_rate"] == 27.0 and long.values.loc["59350", "median_income"] == 20520
    assert int(long.secret["poverty_rate"].sum()) > 3000  # most communes are under secrecy, as published
    assert report.rows_read == 3788 * len(FILOSOFI_MEASURES)


def test_filosofi_long_layout_keeps_communes_and_the_latest_period(tmp_path: Path) -> None:
    text = ("GEO;GEO_OBJECT;FILOSOFI_MEASURE;UNIT_MEASURE;CONF_STATUS;TIME_PERIOD;OBS_VALUE\n"
            "59350;COM;MED_SL;EUR_YR;F;2020;20000\n59350;COM;MED_SL;EUR_YR;F;2021;20520\n"
            "59;DEP;MED_SL;EUR_YR;F;2021;21000\n59512;COM;MED_SL;EUR_YR;C;2021;\n")
    (tmp_path / "long.csv").write_text(text, encoding="utf-8")
    table, report = load_indicator_table(Source("commune_indicators", tmp_path / "long.csv",
                                                columns={"insee_com": "GEO"}, indicators={"median_income": "MED_SL"}),
                                         "insee_com")
    assert sorted(table.values.index) == ["59350", "59512"]
    assert table.values.loc["59350", "median_income"] == 20520 and bool(table.secret.loc["59512", "median_income"])
    assert any("plusieurs périodes" in w for w in report.warnings)
    (tmp_path / "dup.csv").write_text(text.replace(";2020;", ";2021;"), encoding="utf-8")
    with pytest.raises(Exception, match="plusieurs fois") as err:
        load_indicator_table(Source("commune_indicators", tmp_path / "dup.csv", columns={"insee_com": "GEO"},
                                    indicators={"median_income": "MED_SL"}), "insee_com")
    assert "2, 3" in str(err.value)


def test_bpe_rows_converted_from_their_own_crs(tmp_path: Path, files: dict[str, bytes]) -> None:
    """Overseas rows are placed from their own UTM; rows without coordinates or system are counted aside."""
    with zipfile.ZipFile(io.BytesIO(files["BPE24.zip"])) as archive:
        (tmp_path / "BPE24.csv").write_bytes(archive.read("BPE24.csv"))
    hdf = gpd.read_file(REAL / "hdf_communes_2018.geojson").rename(columns={"code": "insee_com"}).to_crs("EPSG:2154")
    to_l93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    overseas = [{"insee_com": com, "geometry": box(*to_l93.transform(lon - 0.02, lat - 0.02),
                                                   *to_l93.transform(lon + 0.02, lat + 0.02))}
                for com, _, lon, lat in OVERSEAS]
    communes = gpd.GeoDataFrame(pd.concat([hdf[["insee_com", "geometry"]], gpd.GeoDataFrame(overseas, crs="EPSG:2154")]),
                                crs="EPSG:2154")
    # The sample's 2021 points against 2018 outlines: one of the Somme lies 1.1 km from its commune.
    services, report = load_bpe(Source("services", tmp_path / "BPE24.csv", format="bpe",
                                       options={"tolerance_m": 1500}), communes)
    for com, _, lon, lat in OVERSEAS:  # one row each kept: the other has no coordinates or no system
        placed = services[services["insee_com"] == com]
        assert len(placed) == 1
        assert placed.geometry.iloc[0].distance(gpd.points_from_xy(*[[v] for v in to_l93.transform(lon, lat)])[0]) < 1.0
    text = " ".join(report.warnings)
    assert "1 équipement(s) sans coordonnées" in text and "système de coordonnées inconnu" in text
    assert "EPSG:2154 (1906)" in text and "EPSG:2975 (1)" in text
    assert report.rows_read == 1906 + 4 and report.rows_kept == len(services) == 1906 + 2, text
    (tmp_path / "BPE25.parquet").write_bytes(files["BPE25.parquet"])  # the parquet, read as published
    from_parquet, _ = load_bpe(Source("services", tmp_path / "BPE25.parquet", format="bpe",
                                      options={"tolerance_m": 1500}), communes)
    assert from_parquet.geometry.geom_equals_exact(services.geometry, tolerance=0.01).all()


@pytest.mark.parametrize(("with_commune", "mode", "codes", "said"), [
    (True, "commune", ["69123"], "9 arrondissements municipaux écartés"),
    (False, "commune", ["69123"], "9 arrondissements municipaux réunis"),
    (True, "arrondissements", [str(69381 + i) for i in range(9)], "gardée en 9 arrondissements"),
])
def test_plm_arrondissements(tmp_path: Path, with_commune: bool, mode: str, codes: list[str], said: str) -> None:
    path = tmp_path / "communes.geojson"
    path.write_text(lyon_layer(with_commune).to_json(), encoding="utf-8")
    communes, report = load_communes(Source("communes", path, options={"plm": mode}))
    assert sorted(communes["insee_com"]) == codes and any(said in w for w in report.warnings)
    area = communes.to_crs("EPSG:2154").area.sum()
    assert area == pytest.approx(gpd.GeoSeries([box(*LYON)], crs="EPSG:4326").to_crs("EPSG:2154").area[0], rel=1e-6)


def test_plm_said_by_data_check(tmp_path: Path, server: Server, capsys) -> None:
    result = run(tmp_path, local_sources(tmp_path, server.url), territory="69", only=["communes"])
    assert list(load_territory(result.catalog).communes["insee_com"]) == ["69123"]
    assert "Lyon (69123) : 9 arrondissements municipaux écartés" in check_output(result.catalog, capsys)


# ---------------------------------------------------------------------------------------------------------
# data.gouv.fr API


def test_dataset_without_matching_resource_lists_the_titles(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, adultes_relais={"ressource": "*postes*mediateurs*"})
    text = failure(tmp_path, sources, "adultes_relais")["adultes_relais"]
    assert "aucune ressource au format csv" in text and AR_DATASET in text and "*postes*mediateurs*" in text and "« ressource »" in text
    assert "Postes adultes-relais 2022 (csv)" in text and "Subventions politique de la ville 2023 (csv)" in text
    assert "note de mise à jour" not in text  # not a data file


def test_unknown_dataset_names_the_slug_and_the_api(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, france_services={"jeu_de_donnees": "structures-france-service"})
    text = failure(tmp_path, sources, "france_services")["france_services"]
    assert text.startswith("Téléchargement impossible : ") and "introuvable sur data.gouv.fr" in text
    assert "« structures-france-service »" in text and "HTTP 404" in text and "jeu_de_donnees" in text
    assert f"{server.url}/api/1/datasets/structures-france-service/" in text


def test_checksum_of_an_uploaded_file_is_checked(tmp_path: Path, server: Server) -> None:
    server.files["liste-fs-20240801.csv"] = server.files["liste-fs-20240801.csv"].replace(b"Lille", b"Lile")
    text = failure(tmp_path, local_sources(tmp_path, server.url), "france_services")["france_services"]
    assert "empreinte annoncée par data.gouv.fr" in text and "sha1:" in text
    assert not (tmp_path / "out" / "france_services.csv").exists()


def test_resource_choice_and_checksum_rules() -> None:
    base = "https://exemple.org"
    source = next(s for s in fetch.read_sources() if s.key == "adultes_relais")
    chosen = json.loads(api_files(base, {"liste-fs-20240801.csv": b""})[f"api/1/datasets/{AR_DATASET}/"])
    resources = [r for r in chosen["resources"] if r["type"] == "main" and datagouv._matches(source, r)]
    assert max(resources, key=datagouv._modified)["title"] == "Postes adultes-relais 2023"
    assert datagouv.announced_checksum(resources[-1]) == ""  # remote: data.gouv.fr never held this file
    assert datagouv.announced_checksum({**resources[-1], "filetype": "file"}) == "sha1:" + "0" * 40


def test_api_unreachable(tmp_path: Path, server: Server, monkeypatch) -> None:
    api = f"http://127.0.0.1:{closed_port()}/api/1"
    monkeypatch.setenv(datagouv.DATAGOUV_API_ENV, api)
    failed = failure(tmp_path, local_sources(tmp_path, server.url), "france_services", "adultes_relais")
    assert "API de data.gouv.fr est injoignable" in failed["france_services"]
    assert f"{api}/datasets/{FS_DATASET}/" in failed["france_services"] and "--from-dir" in failed["france_services"]


def test_mirror_serves_everything_without_the_api(tmp_path: Path, server: Server, monkeypatch) -> None:
    """DIAGNOSTIC_SOURCES_URL: the repository's list under the published names, datasets under their slug."""
    server.files["942d4ee8-8142-4556-8ea1-335537ce1119"] = server.files["qpv-2024-geojson.zip"]
    server.files[f"{FS_DATASET}.csv"] = server.files["liste-fs-20240801.csv"]
    server.files[f"{AR_DATASET}.csv"] = server.files["adultes_relais_postes.csv"]
    server.modified[f"{FS_DATASET}.csv"] = "Thu, 01 Aug 2024 09:30:00 GMT"
    monkeypatch.setenv(SOURCES_URL_ENV, server.url)
    monkeypatch.setenv(datagouv.DATAGOUV_API_ENV, f"http://127.0.0.1:{closed_port()}/api/1")
    result = fetch.fetch(fetch.Territory("department", "62"), tmp_path / "pdc", cache=tmp_path / "cache",
                         progress=False, retries=0, geo_format="gpkg", skip=["epci"])
    assert not [n for n, _ in server.requests if n.startswith("api/")]
    territory = load_territory(result.catalog)
    assert territory.services["source_kind"].value_counts()["france_services"] == 50  # PROVENANCE.md: 62 = 50
    assert set(territory.adultes_relais["insee_dep"]) == {"62"}
    raw = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))
    fs = next(e for e in raw["sources"]["services"] if e["path"] == "france_services.csv")
    assert fs["url"] == f"{server.url}/{FS_DATASET}.csv" and fs["vintage"] == "2024-08-01"
    assert (tmp_path / "pdc" / "communes.gpkg").exists()
    listed = fetch.describe_sources(fetch.read_sources())
    assert f"adresse : {server.url}/{FS_DATASET}.csv (miroir DIAGNOSTIC_SOURCES_URL)" in listed


# ---------------------------------------------------------------------------------------------------------
# Downloads


def test_resumes_after_the_connection_drops(tmp_path: Path, server: Server) -> None:
    name = "communes-100m.geojson.gz"
    server.chunked.discard(name)
    cut = 300_000
    server.drop_after[name] = cut
    sources = local_sources(tmp_path, server.url)
    with pytest.raises(FetchError, match="interrompu") as err:
        run(tmp_path, sources, only=["communes"])
    assert "communes" in str(err.value) and "reprend" in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out-*"))
    assert list((tmp_path / "cache").glob("*.part"))
    result = run(tmp_path, sources, only=["communes"])
    resumed = [int(r.removeprefix("bytes=").rstrip("-")) for n, r in server.requests if n == name and r]
    assert len(resumed) == 1 and 0 < resumed[0] <= cut
    assert len(load_territory(result.catalog).communes) == 648
    communes = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))["sources"]["communes"]
    assert communes["source_sha256"] == hashlib.sha256(server.files[name]).hexdigest()
    assert not list((tmp_path / "cache").glob("*.part"))


def test_checksum_mismatch_is_refused_and_nothing_kept(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, populations={"sha256": "0" * 64})
    text = failure(tmp_path, sources, "populations")["populations"]
    assert "SHA-256" in text and "populations" in text and "sources_officielles.csv" in text
    assert not (tmp_path / "out" / "populations.csv").exists()
    assert not list((tmp_path / "cache").glob("populations-*"))
    good = hashlib.sha256(server.files["ensemble.zip"]).hexdigest()
    result = run(tmp_path, local_sources(tmp_path, server.url, populations={"sha256": good}), only=["populations"])
    assert not result.partial and result.written["populations.csv"] > 0


def test_missing_file_names_the_source_and_what_to_do(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, qpv={"url": f"{server.url}/ancien/qpv.zip"})
    text = failure(tmp_path, sources, "qpv")["qpv"]
    assert "HTTP 404" in text and "Contours des QPV" in text and f"{server.url}/ancien/qpv.zip" in text
    assert "--from-dir" in text


def test_server_down(tmp_path: Path) -> None:
    port = closed_port()
    with pytest.raises(FetchError, match="injoignable") as err:
        run(tmp_path, local_sources(tmp_path, f"http://127.0.0.1:{port}"))
    assert err.value.exit_code == 40 and f"127.0.0.1:{port}" in str(err.value)
    assert not (tmp_path / "out").exists()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diagnostic data")
    cli._add_fetch(parser.add_subparsers(dest="action"))
    return parser


def test_cli_commands(tmp_path: Path, server: Server, capsys) -> None:
    args = _parser().parse_args(["sources"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "942d4ee8-8142-4556-8ea1-335537ce1119" in out and "BPE25.parquet" in out and "Licence Ouverte" in out
    args = _parser().parse_args(["fetch", "--department", "62", "--dest", str(tmp_path / "pdc"), "--quiet",
                                 "--skip", "epci", "--sources", str(local_sources(tmp_path, server.url)),
                                 "--cache", str(tmp_path / "cache")])
    assert args.func(args) == 0
    assert "diagnostic data check" in capsys.readouterr().out
    assert len(load_territory(tmp_path / "pdc" / "catalogue.yaml").communes) == 891
    assert cli.main(["data", "fetch", "--region", "3", "--quiet"]) == 22
    assert "code région" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# diagnostic data sources --check


def test_sources_check_tells_what_answers_moved_vanished_or_changed(tmp_path: Path, server: Server, capsys) -> None:
    catalog = run(tmp_path, local_sources(tmp_path, server.url)).catalog
    fetched = len(server.log)
    server.redirects["ancien/qpv.zip"] = (301, f"{server.url}/qpv-2024-geojson.zip")
    server.files["ensemble.zip"] += b"\0" * 10  # republished in place, ten bytes longer
    server.modified["ensemble.zip"] = "Tue, 15 Dec 2026 08:00:00 GMT"
    server.no_head.add("BPE25.parquet")  # a server refusing HEAD: asked with a one-byte range instead
    api = json.loads(server.files[f"api/1/datasets/{FS_DATASET}/"])
    api["resources"].append(_resource(server.url, "Liste des structures France services", "liste-fs-20261101.csv",
                                      "csv", "2026-11-01T09:00:00+00:00", filesize=77147))
    server.files[f"api/1/datasets/{FS_DATASET}/"] = json.dumps(api).encode()
    server.files["liste-fs-20261101.csv"] = server.files["liste-fs-20240801.csv"]
    sources = local_sources(tmp_path, server.url, qpv={"url": f"{server.url}/ancien/qpv.zip"},
                            filosofi={"url": f"{server.url}/base-cc-filosofi-2021-geo2023_csv.zip"})
    args = _parser().parse_args(["sources", "--check", "--sources", str(sources), "--catalog", str(catalog)])
    assert args.func(args) == 40  # one line no longer answers
    lines = {line.split(" — ")[0].strip(): line for line in capsys.readouterr().out.splitlines() if " — " in line}
    out = "\n".join(lines.values())
    assert lines["communes"].startswith("  communes — répond (HTTP 200)")
    assert f"qpv — a changé d'adresse (HTTP 200) : {server.url}/ancien/qpv.zip" in out
    assert "populations — a changé depuis le catalogue" in lines["populations"]
    assert "filosofi — ne répond plus (HTTP 404)" in lines["filosofi"]
    assert lines["bpe"].startswith("  bpe — répond (HTTP 206)")
    assert f"{text_number(len(server.files['BPE25.parquet']))} octets" in lines["bpe"]
    assert "france_services — a changé depuis le catalogue" in lines["france_services"]
    assert "liste-fs-20261101.csv" in lines["france_services"] and "2026-11-01" in lines["france_services"]
    assert "qpv_indicateurs — sans adresse à vérifier" in lines["qpv_indicateurs"]
    full = fetch_check_text(sources, catalog)
    assert "nouvelle adresse : " + server.url + "/qpv-2024-geojson.zip" in full
    assert "date 2026-07-01 → 2026-12-15" in full and "nouveau fichier publié" in full
    asked = server.log[fetched:]
    assert {m for m, n, _ in asked if not n.startswith("api/")} == {"HEAD", "GET"}
    assert all(r == "bytes=0-0" for m, n, r in asked if m == "GET" and not n.startswith("api/")), "nothing downloaded"


def text_number(value: int) -> str:
    from diagnostic import text
    return text.number(value)


def fetch_check_text(sources: Path, catalog: Path) -> str:
    return describe_check(check_sources(fetch.read_sources(sources), catalog))


def test_sources_check_offline(tmp_path: Path, capsys) -> None:
    sources = local_sources(tmp_path, f"http://127.0.0.1:{closed_port()}")
    args = _parser().parse_args(["sources", "--check", "--sources", str(sources)])
    assert args.func(args) == 40
    out = capsys.readouterr().out
    assert out.startswith("Hors connexion") and "rien n'a pu être vérifié" in out
