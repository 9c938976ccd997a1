"""``diagnostic data fetch`` against a real HTTP server on 127.0.0.1 serving official-format files."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import pytest
import yaml
from pyproj import Transformer
from shapely.geometry import box

from diagnostic import fetch
from diagnostic.errors import FetchError
from diagnostic.territory import load_territory

#: Commune code → (name, department, region, west longitude, south latitude) of a 0.05° square.
COMMUNES = {
    "59350": ("Lille", "59", "32", 3.00, 50.60),
    "59512": ("Roubaix", "59", "32", 3.10, 50.66),
    "62041": ("Arras", "62", "32", 2.74, 50.27),
    "31555": ("Toulouse", "31", "76", 1.40, 43.57),
}
QPVS = {"QN05901M": "59350", "QN05902A": "59512", "QN06201B": "62041", "QN03101C": "31555"}
TO_L93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)


def _centre(code: str) -> tuple[float, float]:
    _, _, _, lon, lat = COMMUNES[code]
    return lon + 0.025, lat + 0.025


def communes_geojson() -> bytes:
    """Commune outlines as Etalab publishes them (code, nom, departement, region), WGS84."""
    gdf = gpd.GeoDataFrame(
        {"code": list(COMMUNES), "nom": [v[0] for v in COMMUNES.values()],
         "departement": [v[1] for v in COMMUNES.values()], "region": [v[2] for v in COMMUNES.values()]},
        geometry=[box(v[3], v[4], v[3] + 0.05, v[4] + 0.05) for v in COMMUNES.values()], crs="EPSG:4326",
    )
    return gdf.to_json().encode()


def qpv_shapefile_zip(folder: Path) -> bytes:
    """QPV 2024 boundaries as a zipped Shapefile with the ANCT fields."""
    rows = []
    for code, com in QPVS.items():
        name, dep, reg, _, _ = COMMUNES[com]
        x, y = _centre(com)
        rows.append({"code_qp": code, "lib_qp": f"Quartier {code[-3:]}", "insee_reg": reg, "lib_reg": "Région",
                     "insee_dep": dep, "lib_dep": "Département", "insee_com": com, "lib_com": name,
                     "siren_epci": "200093201", "geometry": box(x - 0.01, y - 0.01, x + 0.01, y + 0.01)})
    shp = folder / "shp"
    shp.mkdir()
    gpd.GeoDataFrame(rows, crs="EPSG:4326").to_file(shp / "QP2024_France_Hexagonale_Outre_Mer_WGS84.shp")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for part in sorted(shp.iterdir()):
            archive.write(part, part.name)
    return out.getvalue()


def _zip(member: str, text: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text.encode("utf-8"))
    return out.getvalue()


def populations_csv() -> str:
    lines = ["REG;Région;DEP;CODARR;CODCAN;CODCOM;COM;Commune;PMUN;PCAP;PTOT"]
    for code, (name, dep, reg, _, _) in COMMUNES.items():
        lines.append(f"{reg};Région;{dep};1;01;{code[2:]};{code};{name};{int(code) % 9000 + 1000};10;1010")
    return "\n".join(lines) + "\n"


def filosofi_csv() -> str:
    """Filosofi by commune: ``;``, decimal comma, ``s`` for statistical secrecy."""
    return (
        "CODGEO;NBMENFISC21;NBPERSMENFISC21;MED21;PIMP21;TP6021;PPSOC21\n"
        "59350;96579;210000;20520;52;27,0;8,5\n"
        "59512;38000;95000;14580;s;46,0;s\n"
        "62041;19000;40000;20230;55;25,0;7,1\n"
        "31555;250000;480000;22000;60;21,5;6,0\n"
    )


def bpe_csv(filler_rows: int = 40_000) -> str:
    """A large BPE file: a few rows in the test communes, many elsewhere (Lambert-93 metres)."""
    lines = ["REG;DEP;DEPCOM;DCIRIS;AN;TYPEQU;LAMBERT_X;LAMBERT_Y;QUALITE_XY"]
    for i, code in enumerate(["59350", "59350", "59512", "62041", "59350"]):
        x, y = TO_L93.transform(*_centre(code))
        typequ = ["D201", "A203", "C101", "D201", "F303"][i]
        lines.append(f"32;{code[:2]};{code};{code}0000;2021;{typequ};{x + 10 * i:.2f};{y:.2f};Acceptable")
    lines.append("32;59;59350;593500000;2021;A101;;;Non géolocalisé")
    x, y = TO_L93.transform(*_centre("31555"))
    lines += [f"76;31;31555;315550000;2021;B{i % 300:03d};{x + i % 500:.2f};{y:.2f};Bonne" for i in range(filler_rows)]
    return "\n".join(lines) + "\n"


def france_services_csv() -> str:
    header = ("id_fs,insee_dep,lib_fs,adresse,complement_adresse,insee_com,code_postal,lib_com,latitude,longitude,"
              "mail,telephone,h_lundi,h_mardi,h_mercredi,h_jeudi,h_vendredi,h_samedi,prise_rdv,commentaire,type_fs,"
              "format_fs,groupe_fs,labellisation_fs")
    rows = [header]
    for i, code in enumerate(["59350", "62041", "31555"]):
        lon, lat = _centre(code)
        rows.append(f'{10 + i},{code[:2]},"France services {COMMUNES[code][0]}",1 Rue de la Gare,,{code},{code},'
                    f'{COMMUNES[code][0]},{lat},{lon},fs@example.org,03 00 00 00 00,"09:00 - 12:00 / 13:30 - 17:00",'
                    f'09:00 - 12:00,,,,,Oui,,Principal,Fixe,,Espace labellisé 01/01/2020')
    return "\n".join(rows) + "\n"


def adultes_relais_csv() -> str:
    return (
        "annee,id_poste,code_tiers,raison_sociale,montant,code_cv,insee_dep,insee_reg\n"
        "2023,05921R000101,44404468900032,ASSOCIATION MEDIATION,19875.06,CV101,59,32\n"
        "2023,06221R000102,21620041000011,COMMUNE D ARRAS,19875.06,CV102,62,32\n"
        "2023,03121R000103,21310555400017,COMMUNE DE TOULOUSE,19875.06,CV201,31,76\n"
    )


FS_DATASET = "liste-des-structures-france-services"
AR_DATASET = "subventions-politique-de-la-ville"


def _resource(base: str, title: str, name: str, fmt: str, modified: str, body: bytes | None = None) -> dict:
    """A resource as the data.gouv.fr API describes it (SHA-1 checksum when ``body`` is given)."""
    resource = {"title": title, "url": f"{base}/{name}", "format": fmt, "last_modified": modified}
    if body is not None:
        resource["checksum"] = {"type": "sha1", "value": hashlib.sha1(body).hexdigest()}
    return resource


def api_files(base: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """The data.gouv.fr API answers for the two datasets, pointing at files of the local server."""
    france_services = [
        _resource(base, "Liste des structures France services (juillet 2024)", "liste-fs-20240701.csv", "csv",
                  "2024-07-01T09:00:00+00:00"),
        _resource(base, "Liste des structures France services", "liste-fs-20240801.csv", "csv",
                  "2024-08-01T09:30:00.120000+00:00", files["liste-fs-20240801.csv"]),
        _resource(base, "Liste des structures France services (tableur)", "liste-fs-20240901.xlsx", "xlsx",
                  "2024-09-01T09:00:00+00:00"),
    ]
    adultes_relais = [
        _resource(base, "Subventions politique de la ville 2023", "subventions_2023.csv", "csv", "2024-05-02T08:00:00"),
        _resource(base, "Postes adultes-relais 2022", "adultes_relais_2022.csv", "csv", "2023-04-01T08:00:00"),
        _resource(base, "Postes adultes-relais 2023", "adultes_relais_postes.csv", "csv", "2024-04-03T08:00:00"),
    ]
    datasets = {FS_DATASET: france_services, AR_DATASET: adultes_relais}
    return {f"api/1/datasets/{slug}/": json.dumps(
        {"slug": slug, "page": f"https://www.data.gouv.fr/fr/datasets/{slug}/", "resources": resources}).encode()
        for slug, resources in datasets.items()}


class Server:
    """A 127.0.0.1 HTTP server with Range, chunked transfer and dropped connections on demand."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.chunked: set[str] = set()
        self.drop_after: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
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
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("ETag", etag)
                rest = body[start:]
                if name in server.chunked and start == 0:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(rest), 64 * 1024):
                        piece = rest[i:i + 64 * 1024]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
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


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Official-format files, under the names the local server serves them."""
    bpe = bpe_csv()
    return {
        "communes-100m.geojson": communes_geojson(),
        "qpv2024.zip": qpv_shapefile_zip(tmp_path_factory.mktemp("qpv")),
        "ensemble.zip": _zip("donnees_communes.csv", populations_csv()),
        "base-cc-filosofi-2021-geo2023_csv.zip": _zip("cc_filosofi_2021_COM.csv", filosofi_csv()),
        "bpe21_ensemble_xy.csv": bpe.encode(),
        "bpe21_ensemble_xy_csv.zip": _zip("bpe21_ensemble_xy.csv", bpe),
        "liste-fs-20240801.csv": france_services_csv().encode(),
        "adultes_relais_postes.csv": adultes_relais_csv().encode(),
    }


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(autouse=True)
def no_public_api(monkeypatch) -> None:
    """No test reaches the public data.gouv.fr API: by default it is a closed local port."""
    monkeypatch.setenv(fetch.DATAGOUV_API_ENV, f"http://127.0.0.1:{closed_port()}/api/1")


@pytest.fixture
def server(files: dict[str, bytes], monkeypatch):
    srv = Server(files)
    srv.files.update(api_files(srv.url, files))
    srv.chunked.add("bpe21_ensemble_xy.csv")
    srv.thread.start()
    monkeypatch.setenv(fetch.DATAGOUV_API_ENV, f"{srv.url}/api/1/")
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


LOCAL_NAMES = {"communes": "communes-100m.geojson", "qpv": "qpv2024.zip", "populations": "ensemble.zip",
               "filosofi": "base-cc-filosofi-2021-geo2023_csv.zip", "bpe": "bpe21_ensemble_xy.csv"}


def local_sources(tmp_path: Path, base: str, **changes: dict[str, str]) -> Path:
    """The repository's sources file with every file address on the local server (and row changes).

    France Services and adultes-relais keep their dataset, resolved through the local API.
    """
    with open(fetch.SOURCES_FILE, encoding="utf-8", newline="") as fh:
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


def run(tmp_path: Path, sources: Path, dest: str = "out", retries: int = 0, **kwargs) -> fetch.FetchResult:
    return fetch.fetch(fetch.Territory("region", "32"), tmp_path / dest, sources_file=sources,
                       cache=tmp_path / "cache", progress=False, retries=retries, **kwargs)


def test_full_fetch_writes_a_catalogue_that_loads(tmp_path: Path, server: Server, monkeypatch) -> None:
    monkeypatch.setattr(fetch, "CHUNK_ROWS", 5_000)
    result = run(tmp_path, local_sources(tmp_path, server.url))
    territory = load_territory(result.catalog)
    assert sorted(territory.communes["insee_com"]) == ["59350", "59512", "62041"]
    assert sorted(territory.qpv["code_qp"]) == ["QN05901M", "QN05902A", "QN06201B"]
    assert territory.commune_indicators.values.loc["59350", "poverty_rate"] == 27.0
    assert bool(territory.commune_indicators.secret.loc["59512", "social_benefits_share"])
    kinds = territory.services["source_kind"].value_counts().to_dict()
    assert kinds == {"bpe": 5, "france_services": 2}
    assert set(territory.adultes_relais["insee_dep"]) == {"59", "62"}
    raw = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))
    for entries in raw["sources"].values():
        for entry in entries if isinstance(entries, list) else [entries]:
            written = (result.catalog.parent / entry["path"]).read_bytes()
            assert entry["sha256"] == hashlib.sha256(written).hexdigest()
            assert entry["url"].startswith(server.url) and entry["licence"] and entry["vintage"]
    assert raw["sources"]["qpv"]["path"] == "qpv.parquet"
    assert [note.split(" ")[0] for note in result.notes] == ["qpv_indicateurs"]
    fs = next(e for e in raw["sources"]["services"] if e["path"] == "france_services.csv")
    assert fs["url"] == f"{server.url}/liste-fs-20240801.csv" and fs["vintage"] == "2024-08-01"
    assert fs["page"] == f"https://www.data.gouv.fr/fr/datasets/{FS_DATASET}/"
    assert fs["source_sha256"] == hashlib.sha256(server.files["liste-fs-20240801.csv"]).hexdigest()
    ar = raw["sources"]["adultes_relais"]
    assert ar["url"] == f"{server.url}/adultes_relais_postes.csv" and ar["vintage"] == "2024-04-03"
    assert server.count("liste-fs-20240701.csv") == server.count("adultes_relais_2022.csv") == 0
    served = [n for n, _ in server.requests if not n.startswith("api/")]
    run(tmp_path, local_sources(tmp_path, server.url), dest="again")
    again = [n for n, _ in server.requests if not n.startswith("api/")]
    assert again == served, "the second run must use the shared cache"


def test_dataset_without_matching_resource_lists_the_titles(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, adultes_relais={"ressource": "*postes*mediateurs*"})
    with pytest.raises(FetchError, match="aucune ressource au format csv") as err:
        run(tmp_path, sources)
    text = str(err.value)
    assert AR_DATASET in text and "*postes*mediateurs*" in text and "« ressource »" in text
    assert "Postes adultes-relais 2022 (csv)" in text and "Subventions politique de la ville 2023 (csv)" in text
    assert not (tmp_path / "out").exists()


def test_unknown_dataset_names_the_slug_and_the_api(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, france_services={"jeu_de_donnees": "structures-france-service"})
    with pytest.raises(FetchError, match="introuvable sur data.gouv.fr") as err:
        run(tmp_path, sources)
    text = str(err.value)
    assert "« structures-france-service »" in text and "HTTP 404" in text and "jeu_de_donnees" in text
    assert f"{server.url}/api/1/datasets/structures-france-service/" in text
    assert err.value.exit_code == 40 and not (tmp_path / "out").exists()


def test_api_checksum_is_checked(tmp_path: Path, server: Server) -> None:
    server.files["liste-fs-20240801.csv"] = france_services_csv().replace("Lille", "Lile").encode()
    with pytest.raises(FetchError, match="empreinte annoncée par data.gouv.fr") as err:
        run(tmp_path, local_sources(tmp_path, server.url))
    assert "sha1:" in str(err.value) and not (tmp_path / "out").exists()


def test_api_unreachable(tmp_path: Path, server: Server, monkeypatch) -> None:
    api = f"http://127.0.0.1:{closed_port()}/api/1"
    monkeypatch.setenv(fetch.DATAGOUV_API_ENV, api)
    with pytest.raises(FetchError, match="API de data.gouv.fr est injoignable") as err:
        run(tmp_path, local_sources(tmp_path, server.url))
    assert f"{api}/datasets/{FS_DATASET}/" in str(err.value) and "--from-dir" in str(err.value)


def test_resumes_after_the_connection_drops(tmp_path: Path, server: Server) -> None:
    name = "bpe21_ensemble_xy.csv"
    server.chunked.discard(name)
    cut = 300_000
    server.drop_after[name] = cut
    sources = local_sources(tmp_path, server.url)
    with pytest.raises(FetchError, match="interrompu") as err:
        run(tmp_path, sources)
    assert "bpe" in str(err.value) and "reprend" in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out-*"))
    assert list((tmp_path / "cache").glob("*.part"))
    result = run(tmp_path, sources)
    resumed = [int(r.removeprefix("bytes=").rstrip("-")) for n, r in server.requests if n == name and r]
    assert len(resumed) == 1 and 0 < resumed[0] <= cut
    assert load_territory(result.catalog).services["source_kind"].eq("bpe").sum() == 5
    bpe = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))["sources"]["services"][0]
    assert bpe["source_sha256"] == hashlib.sha256(server.files[name]).hexdigest()
    assert not list((tmp_path / "cache").glob("*.part"))


def test_checksum_mismatch_is_refused_and_nothing_kept(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, populations={"sha256": "0" * 64})
    with pytest.raises(FetchError, match="SHA-256") as err:
        run(tmp_path, sources)
    assert "populations" in str(err.value) and "sources_officielles.csv" in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not list((tmp_path / "cache").glob("populations-*"))
    good = hashlib.sha256(server.files["ensemble.zip"]).hexdigest()
    result = run(tmp_path, local_sources(tmp_path, server.url, populations={"sha256": good}))
    assert result.catalog.exists()


def test_missing_file_names_the_source_and_what_to_do(tmp_path: Path, server: Server) -> None:
    sources = local_sources(tmp_path, server.url, qpv={"url": f"{server.url}/ancien/qpv.zip"})
    with pytest.raises(FetchError, match="HTTP 404") as err:
        run(tmp_path, sources)
    text = str(err.value)
    assert "Contours des QPV" in text and f"{server.url}/ancien/qpv.zip" in text and "--from-dir" in text
    assert not (tmp_path / "out").exists()


def test_server_down(tmp_path: Path) -> None:
    port = closed_port()
    with pytest.raises(FetchError, match="injoignable") as err:
        run(tmp_path, local_sources(tmp_path, f"http://127.0.0.1:{port}"))
    assert err.value.exit_code == 40 and f"127.0.0.1:{port}" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_mirror_of_the_official_list(tmp_path: Path, server: Server, monkeypatch) -> None:
    """DIAGNOSTIC_SOURCES_URL serves the repository's list under the published file names."""
    server.files["942d4ee8-8142-4556-8ea1-335537ce1119"] = server.files["qpv2024.zip"]
    monkeypatch.setenv(fetch.SOURCES_URL_ENV, server.url)
    result = fetch.fetch(fetch.Territory("department", "59"), tmp_path / "nord", cache=tmp_path / "cache",
                         progress=False, retries=0, geo_format="gpkg")
    territory = load_territory(result.catalog)
    assert sorted(territory.qpv["code_qp"]) == ["QN05901M", "QN05902A"]
    assert territory.services["source_kind"].value_counts().to_dict() == {"bpe": 4, "france_services": 1}
    assert set(territory.adultes_relais["insee_dep"]) == {"59"}
    assert [n.split(" ")[0] for n in result.notes] == ["qpv_indicateurs"]
    assert (tmp_path / "nord" / "communes.gpkg").exists()


def test_from_dir_builds_the_same_catalogue(tmp_path: Path, files: dict[str, bytes]) -> None:
    hand = tmp_path / "telechargements"
    hand.mkdir()
    for name in ["communes-100m.geojson", "ensemble.zip", "base-cc-filosofi-2021-geo2023_csv.zip",
                 "bpe21_ensemble_xy_csv.zip", "liste-fs-20240801.csv", "adultes_relais_postes.csv"]:
        (hand / name).write_bytes(files[name])
    (hand / "QP2024_France_Hexagonale_Outre_Mer_WGS84.zip").write_bytes(files["qpv2024.zip"])
    result = fetch.fetch(fetch.Territory("region", "32"), tmp_path / "out", from_dir=hand, progress=False)
    territory = load_territory(result.catalog)
    assert len(territory.qpv) == 3 and len(territory.services) == 7
    raw = yaml.safe_load(result.catalog.read_text(encoding="utf-8"))
    assert raw["sources"]["qpv"]["url"].startswith("https://www.data.gouv.fr/")
    assert raw["sources"]["qpv"]["source_file"] == "QP2024_France_Hexagonale_Outre_Mer_WGS84.zip"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diagnostic data")
    fetch.add_commands(parser.add_subparsers(dest="action"))
    return parser


def test_cli_commands(tmp_path: Path, server: Server, capsys) -> None:
    args = _parser().parse_args(["sources"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "942d4ee8-8142-4556-8ea1-335537ce1119" in out and "Licence Ouverte" in out
    args = _parser().parse_args(["fetch", "--department", "62", "--dest", str(tmp_path / "pdc"), "--quiet",
                                 "--sources", str(local_sources(tmp_path, server.url)),
                                 "--cache", str(tmp_path / "cache")])
    assert args.func(args) == 0
    assert "diagnostic data check" in capsys.readouterr().out
    assert list(load_territory(tmp_path / "pdc" / "catalogue.yaml").communes["insee_com"]) == ["62041"]
    args = _parser().parse_args(["fetch", "--region", "3", "--quiet"])
    assert args.func(args) == 22
    assert "code région" in capsys.readouterr().err
