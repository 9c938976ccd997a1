"""Expressed needs (observations): reading, normalising and refusing bad rows with their line numbers."""

from __future__ import annotations

import pytest

from diagnostic.errors import ValueFormatError
from diagnostic.io.catalog import Source
from diagnostic.io.sources.observations import load_observations

HEADER = "date;qpv;code_commune;domaine;type_probleme;source;poids;commentaire\n"
GOOD = "2025-03-03;QN09901A;;espace_public;nuisances;Marche_exploratoire;;halls le soir\n"


def _load(tmp_path, demo, body: str):
    path = tmp_path / "observations.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return load_observations(Source(role="observations", path=path), demo.communes, demo.qpv)


def test_reads_and_normalises(tmp_path, demo):
    obs, report = _load(tmp_path, demo, GOOD + "12/04/2025;;99102;acces_droits;isolement;réunion;2;\n")
    assert report.rows_read == report.rows_kept == 2
    assert list(obs["source_type"]) == ["marche exploratoire", "réunion"]
    assert list(obs["weight"]) == [1.0, 2.0]  # empty weight counts as 1
    assert list(obs["insee_com"]) == ["99101", "99102"]  # commune taken from the QPV when absent
    assert obs["date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-03-03", "2025-04-12"]


@pytest.mark.parametrize(
    ("row", "column", "words"),
    [
        ("2025-02-30;QN09901A;;espace_public;nuisances;entretien;1;\n", "date", "impossibles"),
        ("2025-03-03;QN09901A;;astronomie;nuisances;entretien;1;\n", "domaine", "astronomie"),
        ("2025-03-03;QN09901A;;;nuisances;entretien;1;\n", "domaine", "domaine"),
        ("2025-03-03;QN09901A;;espace_public;bruit;entretien;1;\n", "type_probleme", "bruit"),
        ("2025-03-03;QN09901A;;espace_public;nuisances;sondage;1;\n", "source", "sondage"),
        ("2025-03-03;QN07501Z;;espace_public;nuisances;entretien;1;\n", "qpv", "QN07501Z"),
        ("2025-03-03;QN09901A;;espace_public;nuisances;entretien;beaucoup;\n", "poids", "beaucoup"),
    ],
)
def test_bad_rows_are_refused_with_their_line(tmp_path, demo, row, column, words):
    with pytest.raises(ValueFormatError) as info:
        _load(tmp_path, demo, GOOD + row)
    assert info.value.column == column
    assert info.value.rows == [3]  # header is line 1, the good row line 2
    assert words in str(info.value)


def test_e_mail_in_a_comment_is_refused(tmp_path, demo):
    from diagnostic.errors import ConfidentialityError

    with pytest.raises(ConfidentialityError) as info:
        _load(tmp_path, demo, GOOD + "2025-03-04;QN09901A;;espace_public;nuisances;entretien;1;écrire à jean.d@exemple.fr\n")
    assert info.value.exit_code == 21 and info.value.column == "commentaire" and info.value.rows == [3]
