"""The officer's own files beside a catalogue: Markdown texts (``textes/*.md``) and local recommendations.

Both are published as they are written, so both are read through the confined opener
(:mod:`diagnostic.io.confined`: no link out of their folder, no pipe, a size limit),
checked for personal contact details, and checked whole by ``diagnostic data check``
before any notebook runs. An image in a text must be a PNG, JPEG, GIF or WebP file of
the texts folder, written as a relative path (``![plan](plan.png)``); it is embedded in
the report. A remote (``https://…``), protocol-relative (``//hôte/…``), absolute or
``..`` address is refused (code 10), since a report is read offline and must never show
a file of the officer's computer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from diagnostic.errors import CatalogError, DiagnosticError
from diagnostic.io.confined import IMAGE_LIMIT, decode_text, load_yaml, read_confined
from diagnostic.io.reference import DOMAINS
from diagnostic.io.sources.personal import refuse_contacts_in_text

#: The officer's local recommendations, beside the catalogue.
LOCAL_FILE = "recommandations_locales.yaml"
#: Recommendation types (the rules' and the officer's).
TYPES = {"stratégique", "opérationnelle"}
#: What an officer may set on a recommendation added (« ajouter ») or changed (« modifier »).
ADDED_KEYS = {"id", "type", "domain", "priority", "title", "text", "reason"}
CHANGED_KEYS = {"title", "text", "priority", "type", "domain"}
LAYER_KEYS = {"ajouter", "modifier", "retirer"}
TEXTS_FOLDER = "du dossier des textes"
#: Image types embedded from an officer's text, by their first bytes (SVG is refused: it can carry scripts).
IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif",
               b"GIF89a": "image/gif"}
#: Markdown images: ``![alt](address "title")``.
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]*)>?")


def read_text(texts_dir: Path, section: str) -> str | None:
    """The officer's Markdown for ``section`` (``<texts_dir>/<section>.md``), or None when not written.

    UTF-8 (with or without BOM), UTF-16 with its BOM, else Windows-1252; refused when it
    holds contact details or an image that cannot be embedded (see the module).
    """
    path = Path(texts_dir) / f"{section}.md"
    if not (path.exists() or path.is_symlink()):
        return None
    what = f"le texte « {path.name} »"
    text = decode_text(read_confined(path, what, roots=[Path(texts_dir)], folders=TEXTS_FOLDER))
    refuse_contacts_in_text(text, path, what)
    for number, line in enumerate(text.splitlines(), start=1):
        for match in MARKDOWN_IMAGE.finditer(line):
            reason = image_refusal(texts_dir, match.group(1))
            if reason:
                raise CatalogError(f"{what} insère l'image « {match.group(1)[:80]} » : {reason}.", path=path,
                                   rows=[number], hint="placez l'image (PNG, JPEG, GIF ou WebP) dans le dossier des "
                                   "textes et écrivez son seul nom : ![plan du quartier](plan.png).")
    return text


def image_refusal(texts_dir: Path, address: str) -> str | None:
    """Why the image at ``address`` cannot be embedded from ``texts_dir`` (None when it can)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*:", address) or address.startswith(("//", "\\\\")):
        return "une adresse distante ou un protocole ne sont pas admis (le rapport se lit hors ligne)"
    if address.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", address):
        return "seules les images du dossier des textes sont insérées (pas de chemin absolu ni de « .. »)"
    try:
        image_data(texts_dir, address)
    except DiagnosticError as exc:  # missing, outside, too big, not a file, not an image
        return exc.message.rstrip(".")
    return None


def image_data(texts_dir: Path, address: str) -> tuple[str, bytes]:
    """The media type and bytes of an image of the texts folder (confined, size-bounded, type from its bytes)."""
    path = Path(texts_dir) / address
    raw = read_confined(path, f"l'image « {address} »", roots=[Path(texts_dir)], limit=IMAGE_LIMIT,
                        folders=TEXTS_FOLDER)
    kind = next((t for magic, t in IMAGE_TYPES.items() if raw.startswith(magic)), None)
    if kind is None and raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        kind = "image/webp"
    if kind is None:
        raise CatalogError(f"le fichier « {address} » n'est pas une image PNG, JPEG, GIF ou WebP", path=path)
    return kind, raw


def read_local(path: Path) -> dict[str, Any]:
    """The officer's local recommendations, read from the catalogue's folder and checked whole (code 10, 21)."""
    path = Path(path)
    what = "recommandations locales"
    text = decode_text(read_confined(path, what, roots=[path.parent], folders="du dossier du catalogue"))
    refuse_contacts_in_text(text, path, f"le fichier des {what}")
    local = load_yaml(text, path, what) or {}
    if not isinstance(local, dict):
        raise _local_error(path, "le fichier doit associer « ajouter », « modifier », « retirer » ou « par_commune ».")
    _check_layer(local, path, LAYER_KEYS | {"par_commune"}, "le fichier")
    communes = local.get("par_commune") or {}
    if not isinstance(communes, dict):
        raise _local_error(path, "« par_commune » doit associer des codes INSEE à des modifications.")
    for code, layer in communes.items():
        if not isinstance(layer, dict):
            raise _local_error(path, f"« par_commune » → « {code} » doit contenir ajouter, modifier ou retirer.")
        _check_layer(layer, path, LAYER_KEYS, f"« par_commune » → « {code} »")
    return local


def _local_error(path: Path, message: str) -> CatalogError:
    return CatalogError(f"recommandations locales : {message}", path=path,
                        hint="voir l'exemple du README (section « Préconisations locales »).")


def _check_layer(layer: dict, path: Path, allowed: set[str], where: str) -> None:
    """One level of the file: known keys, well-formed additions, changes and removals."""
    for key in layer:
        if key not in allowed:
            raise _local_error(path, f"clé inconnue « {key} » dans {where} (attendu : {', '.join(sorted(allowed))}).")
    added = layer.get("ajouter") or []
    if not isinstance(added, list):
        raise _local_error(path, f"« ajouter » de {where} doit être une liste de recommandations.")
    for item in added:
        if not isinstance(item, dict):
            raise _local_error(path, f"chaque élément de « ajouter » ({where}) doit être une recommandation.")
        missing = {"id", "title", "text"} - set(item)
        if missing:
            raise _local_error(path, f"recommandation ajoutée sans {', '.join(sorted(missing))} ({where}).")
        _check_fields(item, path, ADDED_KEYS, f"la recommandation « {item['id']} »")
    changed = layer.get("modifier") or {}
    if not isinstance(changed, dict) or not all(isinstance(v, dict) for v in changed.values()):
        raise _local_error(path, f"« modifier » de {where} doit associer un identifiant à ses changements.")
    for rid, changes in changed.items():
        _check_fields(changes, path, CHANGED_KEYS, f"la modification de « {rid} »")
    removed = layer.get("retirer") or []
    if not isinstance(removed, list) or not all(isinstance(r, str) for r in removed):
        raise _local_error(path, f"« retirer » de {where} doit être une liste d'identifiants.")


def _check_fields(item: dict, path: Path, allowed: set[str], what: str) -> None:
    for key, value in item.items():
        if key not in allowed:
            raise _local_error(path, f"clé inconnue « {key} » pour {what} (attendu : {', '.join(sorted(allowed))}).")
        if key in ("id", "title", "text", "reason") and not (isinstance(value, str) and value.strip()):
            raise _local_error(path, f"« {key} » de {what} doit être un texte non vide.")
    if "type" in item and item["type"] not in TYPES:
        raise _local_error(path, f"type « {item['type']} » pour {what} : attendu stratégique ou opérationnelle.")
    if "domain" in item and item["domain"] not in {*DOMAINS, "transversal"}:
        raise _local_error(path, f"domaine « {item['domain']} » inconnu pour {what} "
                           f"(domaines : {', '.join(sorted({*DOMAINS, 'transversal'}))}).")
    if "priority" in item and (isinstance(item["priority"], bool) or item["priority"] not in (1, 2, 3)):
        raise _local_error(path, f"priorité « {item['priority']} » pour {what} : attendu 1, 2 ou 3.")


def check_officer_files(catalog_dir: Path, texts_dir: Path) -> None:
    """Every officer text and the local recommendations, checked before any work (``data check``, ``run``)."""
    if Path(texts_dir).is_dir():
        for path in sorted(Path(texts_dir).glob("*.md")):
            read_text(texts_dir, path.stem)
    if (Path(catalog_dir) / LOCAL_FILE).exists() or (Path(catalog_dir) / LOCAL_FILE).is_symlink():
        read_local(Path(catalog_dir) / LOCAL_FILE)
