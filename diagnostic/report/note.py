"""The council note: two pages an officer edits and sends to the municipal council (``note_conseil.docx``).

Written beside every report by :func:`~diagnostic.report.exports.write_tables`, in Word format (python-docx), which
LibreOffice and Word open and edit. It says what page one of the report says — the same sentences, numbers read
from :func:`diagnostic.report.summary.decision` — then why, the cost table and what the council is asked to decide.
No file name, code or parameter: it is read by elected officials.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from docx import Document
from docx.shared import Cm, Pt

from diagnostic import text
from diagnostic._fs import write_atomic_bytes
from diagnostic.report import summary

NOTE_FILE = "note_conseil.docx"
#: Two printed pages of 11-point text with a table: the note never holds more words than this.
MAX_WORDS = 900


def note_paragraphs(d) -> dict[str, list[str]]:
    """The note's text by part (``propose``, ``pourquoi``, ``decider``), from page one and the key messages."""
    dec = summary.decision(d)
    e = summary.essentials(d)
    asks = []
    if dec.get("mediateurs_necessaires"):
        asks.append("approuver le principe du service de médiation sociale décrit ci-dessus, ses territoires "
                    "d'intervention et ses publics prioritaires")
        if dec.get("postes_a_creer") and dec.get("aide_etat"):
            asks.append(f"autoriser le maire à solliciter les financements indiqués, dont "
                        f"{text.count(dec['postes_a_creer'], 'poste', 'postes')} d'adulte-relais auprès de l'État")
        elif (dec.get("total_commune") or {}).get("cout_annuel"):
            asks.append("autoriser le maire à solliciter les financements indiqués")
        for joint in dec.get("services_communs") or []:
            asks.append(f"engager avec {joint['porteur']['libelle']} la création du service commun "
                        f"{text.of(joint['nom'])}")
        if dec.get("gouvernance"):
            asks.append(f"engager avec les partenaires la mise en place du portage recommandé "
                        f"({dec['gouvernance']['libelle']})")
        asks.append("prévoir l'évaluation du service dès son démarrage, présentée au conseil après un an")
    else:
        asks.append("prendre acte du diagnostic et demander un point d'étape avec les partenaires dans un an")
    return {"propose": [s["texte"] for s in e["decision"]], "pourquoi": [m["texte"] for m in e["messages"][:4]],
            "decider": [text.sentence(a) for a in asks]}


def cost_rows(d) -> list[tuple[str, str]]:
    """The figures of page one as label–value rows: mediators, posts in place, to create, cost, each funder."""
    dec = summary.decision(d)
    if not dec.get("mediateurs_necessaires"):
        return []
    places = summary.posts_in_place(dec)
    rows = [("Médiateurs nécessaires", summary._number(dec["mediateurs_necessaires"]))]
    rows += ([("Postes d'adultes-relais déjà en place", "non connus (absents des données)")] if places is None else
             [(f"Postes d'adultes-relais déjà en place {where}", summary._number(n)) for where, n in places])
    rows.append(("Postes à créer par la commune", text.number(dec["postes_a_creer"])))
    rows += [(f"Postes à créer pour le service commun {text.of(j['nom'])} (part de la commune)",
              f"{text.number(j['postes_a_creer'])} ({summary._number(j['part_postes_a_creer'])})")
             for j in dec.get("services_communs") or []]
    total = dec.get("total_commune") or {}
    rows.append(("Coût annuel pour la commune", summary._euros(total.get("cout_annuel") or 0)))
    rows += [(f"Financé par {who}", summary._euros(v)) for who, v in summary.funders(dec, d.name)]
    if dec.get("gouvernance"):
        rows.append(("Portage recommandé", dec["gouvernance"]["libelle"]))
    return rows


def write_note(d, path: Path, date: dt.date | None = None) -> Path:
    """Write the council note of diagnostic ``d`` at ``path`` (atomically) and return the path."""
    parts = note_paragraphs(d)
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name, style.font.size = "Liberation Sans", Pt(11)
    for section in doc.sections:
        section.top_margin = section.bottom_margin = Cm(2)
        section.left_margin = section.right_margin = Cm(2.2)
    if d.fictional:
        mark = doc.add_paragraph("Données fictives — territoire de démonstration")
        mark.runs[0].bold = True
    doc.add_heading(f"Note de synthèse pour le conseil municipal {text.of(d.name)}", level=1)
    doc.add_paragraph(f"Objet : diagnostic territorial partagé de la médiation sociale — "
                      f"{text.date(date or dt.date.today())}")
    doc.add_heading("Ce qui est proposé", level=2)
    for sentence in parts["propose"]:
        doc.add_paragraph(sentence)
    rows = cost_rows(d)
    if rows:
        doc.add_heading("Ce qu'il en coûte et qui paie", level=2)
        table = doc.add_table(rows=len(rows), cols=2)
        table.style = "Table Grid"
        for row, (label, value) in zip(table.rows, rows):
            row.cells[0].text, row.cells[1].text = label, value
        doc.add_paragraph("Montants annuels : salaire chargé d'un médiateur et aide de l'État par poste d'adulte-relais, "
                          "tels que le diagnostic les retient ; le détail du calcul figure dans le rapport.")
    doc.add_heading("Pourquoi", level=2)
    for sentence in parts["pourquoi"]:
        doc.add_paragraph(sentence, style="List Bullet")
    doc.add_heading("Ce que le conseil est invité à décider", level=2)
    for sentence in parts["decider"]:
        doc.add_paragraph(sentence, style="List Number")
    doc.add_paragraph("Le rapport du diagnostic, joint à cette note, donne les chiffres, leurs sources et la méthode.")
    buffer = io.BytesIO()
    doc.save(buffer)
    return write_atomic_bytes(Path(path), buffer.getvalue())
