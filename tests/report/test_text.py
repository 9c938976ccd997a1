"""The one French formatter: numbers, counts and their plural, missing values."""

import math

import pytest

from diagnostic import text


@pytest.mark.parametrize("value, digits, unit, expected", [
    (12345.6, 1, "", "12\u202f345,6"),
    (236710, 0, "", "236\u202f710"),
    (48.5, 1, "%", "48,5\u202f%"),
    (22810.61, 2, "€", "22\u202f810,61\u00a0€"),
    (-0.04, 1, "", "0,0"),
    (None, 0, "", "non disponible"),
    (math.nan, 1, "%", "non disponible"),
    (math.inf, 0, "", "non disponible"),
])
def test_number(value, digits, unit, expected):
    assert text.number(value, digits, unit) == expected


def test_count_agrees_its_noun():
    assert text.count(0, "besoin") == "0\u00a0besoin"
    assert text.count(1, "besoin") == "1\u00a0besoin"
    assert text.count(7, "besoin") == "7\u00a0besoins"
    assert text.count(1962.0, "habitant") == "1\u202f962\u00a0habitants"
    assert text.count(3, "besoin non couvert", "besoins non couverts") == "3\u00a0besoins non couverts"
    with pytest.raises(ValueError):
        text.plural(3, "besoin non couvert")


def test_status_and_fold():
    assert text.status_label("s") == "secret statistique"
    assert text.status_label("nd") == "non disponible"
    assert text.fold(" Écoles ") == "ecoles"
    assert text.join(["a", "", "b", "c"]) == "a, b et c"


@pytest.mark.parametrize("name, at, of", [
    ("Toulouse", "à Toulouse", "de Toulouse"),
    ("Le Cateau-Cambrésis", "au Cateau-Cambrésis", "du Cateau-Cambrésis"),
    ("Le Havre", "au Havre", "du Havre"),
    ("Les Mureaux", "aux Mureaux", "des Mureaux"),
    ("La Madeleine", "à La Madeleine", "de La Madeleine"),
    ("L'Haÿ-les-Roses", "à L'Haÿ-les-Roses", "de L'Haÿ-les-Roses"),
    ("L\u2019Isle-d\u2019Abeau", "à L\u2019Isle-d\u2019Abeau", "de L\u2019Isle-d\u2019Abeau"),
    ("Aux Marais", "aux Marais", "des Marais"),
    ("Amiens", "à Amiens", "d'Amiens"),
    ("Œuilly", "à Œuilly", "d'Œuilly"),
    ("Lens", "à Lens", "de Lens"),
    ("Grand Mirail", "au Grand Mirail", "du Grand Mirail"),
    ("Hauts de Lys", "aux Hauts de Lys", "des Hauts de Lys"),
    (" Hellemmes ", "à Hellemmes", "d'Hellemmes"),
])
def test_at_and_of_contract_with_the_article(name, at, of):
    assert text.at(name) == at
    assert text.of(name) == of


def test_of_agrees_with_insee_article_types(real_dir):
    """Every Hauts-de-France commune of COG 2024: « de » as INSEE's ``TNCC`` says (its « charnière »), except
    aspirated h, which INSEE knows name by name (« de Hem ») and the text reads as mute (« d'Halluin »)."""
    import pandas as pd

    cog = pd.read_csv(real_dir / "hdf_cog_communes_2024.csv", dtype=str)
    assert len(cog) == 3788
    expected = {"0": "de ", "1": "d'", "2": "du ", "3": "de La ", "4": "des ", "5": "de L'", "6": "des "}
    located = {"0": "à ", "1": "à ", "2": "au ", "3": "à La ", "4": "aux ", "5": "à L'", "6": "aux "}
    wrong = cog[[not text.of(n).startswith(expected[t]) for n, t in zip(cog["LIBELLE"], cog["TNCC"])]]
    assert set(wrong["TNCC"]) == {"0"} and wrong["LIBELLE"].str.startswith("H").all()
    assert len(wrong) == 43  # of the 187 communes in H, 144 with a mute h
    assert all(text.at(n).startswith(located[t]) for n, t in zip(cog["LIBELLE"], cog["TNCC"]))
    assert text.of("Le Cateau-Cambrésis") == "du " + cog.set_index("COM").at["59136", "NCCENR"]


def test_locative_elides_after_l():
    assert text.locative("dans l'", "Ain") == "dans l'Ain"
    assert text.locative("en", " Haute-Garonne") == "en Haute-Garonne"
    assert text.locative("à", "La Réunion") == "à La Réunion"


def test_plurals_in_au_and_eu():
    """« 2 niveaus » was printed: words in -au and -eu take an x, a few take an s."""
    from diagnostic import text

    assert text.count(2, "niveau") == "2\u00a0niveaux" and text.plural(3, "lieu") == "lieux"
    assert text.plural(2, "pneu") == "pneus" and text.plural(1, "niveau") == "niveau"


def test_counts_in_remarks_get_thousands_separators_not_years():
    """Loader remarks shown in the sources table: « 7137 valeurs » → « 7 137 valeurs », years left alone."""
    from diagnostic import text

    assert text.numbers_in("7137 valeurs sous secret statistique") == "7\u202f137 valeurs sous secret statistique"
    assert text.numbers_in("1201 QPV hors du territoire") == "1\u202f201 QPV hors du territoire"
    assert text.numbers_in("postes de 2024 et millésime 2022 retenu") == "postes de 2024 et millésime 2022 retenu"


def test_dates_after_de():
    import datetime as dt

    from diagnostic import text

    assert text.of_date(dt.date(2024, 8, 1)) == "du 1er août 2024"


def test_employer_names_in_capitals_are_written_as_names():
    from diagnostic import text

    assert text.proper_case("ASSOC ITINERAIRES") == "Association Itineraires"
    assert text.proper_case("COM ROUBAIX") == "Commune de Roubaix"
    assert text.proper_case("CCAS TOURCOING") == "CCAS Tourcoing"
    assert text.proper_case("ASS DEVELOP DE L'EMPLOI METIERS NOUVEAUX") == "Association Develop de l'Emploi Metiers Nouveaux"
    assert text.proper_case("Centre social Les Hauts") == "Centre social Les Hauts"
