"""Maps: rendered-HTML assertions, weight, static PNG, and offline pages in headless Chromium."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from diagnostic.io.reference import DOMAINS
from diagnostic.report import maps
from diagnostic.report.maps import interactive
from diagnostic.report.maps.geometry import feature_collection

#: Test-only mapping of equipment codes (prefixes) to mediation domains.
TYPE_DOMAINS = {
    "A1": "espace_public", "A2": "acces_droits", "A122": "emploi", "C": "education", "D": "sante",
    "E": "transports", "F": "jeunesse", "FS": "acces_droits", "bailleur": "habitat",
    "centre_social": "acces_droits", "maison_jeunes": "jeunesse", "mission_locale": "emploi",
    "ccas": "acces_droits", "arret_transport": "transports", "police_municipale": "espace_public",
}
EVIL = "<script>alert('x')</script> & Cie"
MB = 1024 * 1024


def _domain(code: str) -> str | None:
    return next((TYPE_DOMAINS[k] for k in sorted(TYPE_DOMAINS, key=len, reverse=True) if code.startswith(k)), None)


def _with_domains(services: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = services.copy()
    out["domain"] = out["type_code"].map(_domain)
    out["domain_label"] = out["domain"].map(DOMAINS)
    out["type_label"] = out["type_code"]
    return out


def _text(page: str) -> str:
    """The page with JSON string escapes (``\\uXXXX``, ``\\"``) decoded, to search for French texts."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page).replace('\\"', '"')


@pytest.fixture(scope="module")
def inputs(demo):
    commune = demo.communes[demo.communes["insee_com"] == "99101"]
    qpv = demo.qpv_in("99101").merge(demo.qpv_indicators.values, left_on="code_qp", right_index=True)
    services = _with_domains(demo.services[demo.services["insee_com"] == "99101"]).reset_index(drop=True)
    services.loc[0, "name"] = EVIL
    needs = pd.DataFrame({
        "code_qp": ["QN09901A", "QN09901A", "QN09902B"],
        "domain": ["sante", "transports", "habitat"],
        "domain_label": ["Santé", "Transports", "Habitat et bailleurs"],
        "level": ["fort", "fort", "moyen"],
    })
    actors = gpd.GeoDataFrame(
        {"actor_id": ["P1", "P2"], "name": ["Centre social <Les Hauts>", "Bailleur Lys Habitat"],
         "type_label": ["Association", "Bailleur social"]},
        geometry=gpd.points_from_xy([239_300, 241_000], [6_620_900, 6_619_800]), crs="EPSG:2154",
    )
    return {"commune": commune, "qpv": qpv, "services": services, "needs": needs,
            "context": demo.communes, "actors": actors}


def _demo_layers(inputs, **kwargs) -> maps.MapLayers:
    args = {"indicator": "employment_rate", "indicator_label": "Taux d'emploi (%)", "needs": inputs["needs"],
            "context": inputs["context"], "actors": inputs["actors"], **kwargs}
    return maps.MapLayers(inputs["commune"], inputs["qpv"], inputs["services"], **args)


def _demo_map(inputs, **options):
    return maps.commune_map(_demo_layers(inputs), **options)


def _toulouse_services(commune: gpd.GeoDataFrame, n: int = 3000) -> gpd.GeoDataFrame:
    """Plausible service points for Toulouse (the real extract has none): n points, eight domains."""
    rng = np.random.default_rng(31555)
    keys = rng.choice(list(DOMAINS), n)
    return gpd.GeoDataFrame(
        {"service_id": [f"S{i}" for i in range(n)],
         "name": [f"Équipement de proximité n° {i}" for i in range(n)],
         "type_code": "D201", "type_label": "Médecin généraliste", "domain": keys,
         "domain_label": [DOMAINS[k] for k in keys],
         "address": [f"{i} avenue de la République, 31000 Toulouse" for i in range(n)],
         "hours": "lun.-ven. 9h-12h, 14h-18h"},
        geometry=commune.sample_points(n, rng=rng).explode(index_parts=False).to_numpy(), crs=commune.crs,
    )


# --- rendered HTML -------------------------------------------------------------------------------

def test_layers_legend_and_styles(inputs):
    page = _text(maps.map_html(_demo_map(inputs)))
    for name in ("Communes voisines", "Limite communale – Villeneuve-sur-Lys", "Bande de 300 m autour des QPV",
                 "QPV – Taux d&#39;emploi (%)", "Partenaires (2)"):
        assert name in page
    counts = inputs["services"]["domain"].value_counts()
    for key, n in counts.items():
        assert f"{DOMAINS[key]} ({n})" in page
        assert maps.DOMAIN_COLOURS[key] in page
    classes = maps.classify(inputs["qpv"]["employment_rate"])
    for label in (*classes.labels, "Secret ou non disponible", "Besoin fort non couvert"):
        assert label in page
    assert '"fillColor": "url(#diag-hachures)"' in page  # QN09902B: employment rate not available
    assert '"color": "#b2182b"' in page and "diag-besoin-fort" in page
    assert "Besoins forts non couverts : Santé ; Transports" in page
    assert "L.control.scale" in page and "L.control.layers" in page


def test_data_texts_are_escaped(inputs):
    page = _text(maps.map_html(_demo_map(inputs)))
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Cie" in page
    assert "Centre social &lt;Les Hauts&gt;" in page
    assert EVIL not in page and "<Les Hauts>" not in page


def test_tooltips_and_legend_escape_data(inputs):
    """QPV names, need labels and the indicator's label reach tooltips and legend through the escaping templates."""
    layers = maps.MapLayers(inputs["commune"], inputs["qpv"].assign(lib_qp=EVIL), inputs["services"].iloc[:0],
                            indicator="employment_rate", indicator_label=EVIL,
                            needs=inputs["needs"].assign(domain_label=EVIL))
    page = _text(maps.map_html(maps.commune_map(layers)))
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Cie"
    assert f"<b>{escaped}</b> (QN09901A)" in page
    assert f"Besoins forts non couverts : {escaped}" in page
    assert f'<p class="diag-legende-titre">{escaped}</p>' in page
    assert "<script>alert" not in page


def test_page_is_self_contained(inputs):
    page = maps.map_html(_demo_map(inputs))
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)
    for word in ("cdn.", "jquery", "bootstrap", "font-awesome", "tile.openstreetmap"):
        assert word not in page.lower()
    assert "window.L=" in page.replace(" ", "")  # Leaflet itself is inline
    assert "markerClusterGroup" in page


def test_tiles_are_an_option_with_attribution(inputs):
    page = _text(maps.map_html(_demo_map(inputs, tiles=True)))
    assert "https://tile.openstreetmap.org/{z}/{x}/{y}.png" in page
    assert "contributeurs" in page and "openstreetmap.org/copyright" in page


def test_each_geometry_embedded_once_and_rounded(inputs):
    page = maps.map_html(_demo_map(inputs))
    for code in inputs["qpv"]["code_qp"]:
        assert page.count(f'"id": "{code}"') == 1
    fc = feature_collection(inputs["qpv"], tolerance_m=3)
    coords = re.findall(r"-?\d+\.\d+", str([f["geometry"]["coordinates"] for f in fc["features"]]))
    assert coords and max(len(c.split(".")[1]) for c in coords) <= 5


def test_classes_with_few_or_missing_values():
    assert maps.classify(pd.Series([np.nan, np.nan])).labels == ()
    one = maps.classify(pd.Series([12.0, 12.0, np.nan]))
    assert one.labels == ("12",) and one.colour(np.nan) is None
    two = maps.classify(pd.Series([43.2, 45.2]))
    assert two.labels == ("43,2", "45,2") and two.colour(43.2) != two.colour(45.2)
    many = maps.classify(pd.Series(np.arange(40.0)), scheme="quantiles")
    assert len(many.labels) == 5 and many.labels[0] == "0 – 7"
    with pytest.raises(ValueError):
        maps.classify(pd.Series([1.0]), scheme="jenks")


def test_overview_map_links_reports(demo):
    communes = demo.communes.assign(rapport=["99101/rapport.html", "99102/rapport.html", None],
                                    lib_com=["Villeneuve", 'Saint-Aubin "les" Prés', "Mont-Clair"])
    page = _text(maps.map_html(maps.overview_map(communes, indicator="population", indicator_label="Population")))
    assert '<a href="99101/rapport.html">Ouvrir le rapport</a>' in page
    assert "Rapport non disponible" in page
    assert "Saint-Aubin &#34;les&#34; Prés" in page
    assert "Communes – Population" in page


def test_fragment_does_not_repeat_leaflet(inputs):
    one = maps.map_fragment(_demo_map(inputs))
    assert "window.L=" not in one.replace(" ", "") and len(one) < len(maps.map_assets()) / 2
    assert one.startswith('<div class="diag-carte"')
    assert "html, body" not in one
    assert maps.map_fragment(_demo_map(inputs), include_assets=True).startswith(maps.map_assets())


def test_static_png(inputs, tmp_path):
    path = maps.static_map(_demo_layers(inputs), tmp_path / "carte.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 30_000 < path.stat().st_size < 2 * MB


def test_printed_map_names_each_qpv(inputs, tmp_path, monkeypatch):
    """Paper has no tooltips: the printed map writes each QPV's name, beside a legend."""
    from diagnostic.report.maps import static

    drawn = {}
    save = static.Figure.savefig

    def record(fig, *args, **kwargs):
        drawn["texts"] = [t.get_text() for ax in fig.axes for t in ax.texts]
        drawn["legend"] = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(static.Figure, "savefig", record)
    maps.static_map(_demo_layers(inputs, context=None, actors=None), tmp_path / "carte.png")
    assert set(inputs["qpv"]["lib_qp"]) <= set(drawn["texts"])
    assert any("Bande de 300 m" in t for t in drawn["legend"])


@pytest.mark.real
def test_toulouse_map_weight(occitanie, tmp_path):
    commune = occitanie.communes[occitanie.communes["insee_com"] == "31555"]
    qpv = occitanie.qpv_in("31555").merge(occitanie.qpv_indicators.values, left_on="code_qp", right_index=True)
    assert len(qpv) == 12
    empty = _toulouse_services(commune, 0)
    options = {"indicator": "poverty_rate", "indicator_label": "Taux de pauvreté (%)", "context": occitanie.communes}
    bare = maps.save_map(maps.commune_map(maps.MapLayers(commune, qpv, empty, **options)),
                         tmp_path / "sans_services.html")
    full = maps.save_map(maps.commune_map(maps.MapLayers(commune, qpv, _toulouse_services(commune), **options)),
                         tmp_path / "toulouse.html")
    assert bare.stat().st_size < 0.4 * MB
    assert full.stat().st_size < 1.5 * MB


# --- in a real browser, offline ------------------------------------------------------------------

def _assert_clean(log):
    assert log.external_requests == []
    assert log.console_errors == []
    assert log.page_errors == []


@pytest.mark.browser
def test_browser_counts_polygons_and_markers(inputs, offline_page, tmp_path):
    m = _demo_map(inputs, cluster=False)
    page, log = offline_page(maps.save_map(m, tmp_path / "carte.html"))
    _assert_clean(log)
    assert page.evaluate("typeof window.L") == "object"
    overlay = page.locator(".leaflet-overlay-pane")
    assert overlay.locator("path.diag-qpv").count() == len(inputs["qpv"])
    assert overlay.locator("path.diag-besoin-fort").count() == 1
    assert overlay.locator("path.diag-bande").count() == 1
    assert overlay.locator("path.diag-service").count() == len(inputs["services"])
    assert overlay.locator("path.diag-partenaire").count() == 2
    legend = [line for line in page.locator(".diag-legende").inner_text().splitlines() if line]
    assert legend[:2] == ["Légende", "Taux d'emploi (%)"]
    popup = page.evaluate(
        """name => { let html = null;
            window[name].eachLayer(g => g.eachLayer && g.eachLayer(l => {
                const p = l.getPopup && l.getPopup();
                if (p && String(p.getContent()).includes('alert')) { l.openPopup(); html = p.getContent(); }
            }));
            return [html, document.querySelectorAll('.leaflet-popup-content script').length]; }""",
        m.get_name(),
    )
    assert popup[0].startswith("<b>&lt;script&gt;") and popup[1] == 0


@pytest.mark.browser
def test_browser_cluster_counts_add_up(inputs, offline_page, tmp_path, monkeypatch):
    monkeypatch.setattr(interactive, "CLUSTER_FROM", 3)
    m = maps.commune_map(_demo_layers(inputs, context=None))
    page, log = offline_page(maps.save_map(m, tmp_path / "carte.html"), wait_ms=2000)
    _assert_clean(log)
    clustered = page.evaluate(
        "Array.from(document.querySelectorAll('.diag-cluster span')).reduce((a, s) => a + Number(s.textContent), 0)"
    )
    loose = page.locator(".leaflet-overlay-pane path.diag-service").count()
    assert page.locator(".diag-cluster").count() > 0
    assert clustered + loose == len(inputs["services"])


@pytest.mark.browser
def test_browser_report_with_two_fragments(inputs, demo, offline_page, tmp_path):
    communes = demo.communes.assign(rapport=demo.communes["insee_com"] + "/rapport.html")
    body = "".join(
        f"<h2>Carte {i}</h2>" + maps.map_fragment(m, height="400px")
        for i, m in enumerate([_demo_map(inputs),
                               maps.overview_map(communes, indicator="population", indicator_label="Population")])
    )
    path = tmp_path / "rapport.html"
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{maps.map_assets()}</head>"
                    f"<body>{body}</body></html>", encoding="utf-8")
    page, log = offline_page(path)
    _assert_clean(log)
    assert page.locator(".leaflet-container").count() == 2
    assert page.locator("path.diag-qpv").count() == len(inputs["qpv"])
    assert page.locator("path.diag-commune-apercu").count() == len(communes)


def test_minimal_and_degenerate_inputs(inputs, tmp_path):
    commune, qpv, services = inputs["commune"], inputs["qpv"], inputs["services"]
    bare = _text(maps.map_html(maps.commune_map(maps.MapLayers(commune, qpv.iloc[:0], services.iloc[:0]))))
    assert "Limite communale" in bare and "diag-qpv" not in bare and "Bande de" not in bare
    plain = maps.MapLayers(commune, qpv, services.drop(columns=["domain", "domain_label"]))
    plain_page = _text(maps.map_html(maps.commune_map(plain)))
    assert f"Autres services ({len(services)})" in plain_page and "Quartiers prioritaires (QPV)" in plain_page
    secret = maps.MapLayers(commune, qpv.assign(poverty_rate=np.nan), services, indicator="poverty_rate",
                            indicator_label="Taux de pauvreté (%)", band_m=500)
    hidden = _text(maps.map_html(maps.commune_map(secret)))
    assert "Secret ou non disponible" in hidden and "Bande de 500 m autour des QPV" in hidden
    assert maps.static_map(secret, tmp_path / "s.png").exists()
