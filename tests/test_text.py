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
