"""What a batch remembers between runs: per commune, a fingerprint of its inputs and its last outcome.

``manifest.json`` in the batch's output folder is rewritten atomically as communes
complete; a commune whose fingerprint is unchanged and whose files are all there is
skipped by the next batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from diagnostic import __version__
from diagnostic._fs import write_atomic
from diagnostic.analysis.indicators.needs import RULES_FILE as NEEDS_RULES
from diagnostic.analysis.recommend import LOCAL_FILE
from diagnostic.analysis.recommend import RULES_FILE as RECO_RULES
from diagnostic.io.reference import DOMAINS_FILE, INDICATORS_FILE
from diagnostic.io.territory import TerritoryData
from diagnostic.pipeline.run import NOTEBOOK
from diagnostic.report.export import TEMPLATE_DIR

#: The manifest's file name in a batch's output folder, and its schema.
MANIFEST = "manifest.json"
SCHEMA = "diagnostic-manifeste/1"


def _sha(*parts: bytes) -> str:
    """A SHA-256 over the SHA-256 of each part (so that no two sequences of parts can collide)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _files(paths: Sequence[Path]) -> bytes:
    """The names and contents of the existing ``paths``, as bytes to hash."""
    return b"".join(p.name.encode() + b"\0" + p.read_bytes() for p in paths if p.is_file())


def input_hashes(data: TerritoryData, params: dict[str, dict[str, Any]], notebook: Path = NOTEBOOK) -> dict[str, str]:
    """Per commune, a SHA-256 over everything its report depends on.

    The officer's local recommendations count in full for their global part and,
    for ``par_commune``, only the section of that commune: editing one commune's
    section re-runs that commune alone.
    """
    any_params = next(iter(params.values()), {})
    rules = [Path(any_params.get(k) or default)
             for k, default in (("needs_rules", NEEDS_RULES), ("reco_rules", RECO_RULES))]
    texts = sorted(data.catalog.texts_dir.glob("*.md")) if data.catalog.texts_dir.is_dir() else []
    common = _sha(
        data.catalog.fingerprint().encode(), _files(rules), _files([INDICATORS_FILE, DOMAINS_FILE]),
        Path(notebook).read_bytes(), _files(sorted(p for p in TEMPLATE_DIR.rglob("*") if p.is_file())),
        _files(texts), __version__.encode(),
    )
    local_path = data.catalog.path.parent / LOCAL_FILE
    local_raw = local_path.read_bytes() if local_path.exists() else b""
    try:
        local = yaml.safe_load(local_raw) or {}
    except yaml.YAMLError:
        local = local_raw.decode(errors="replace")
    per_commune = (local.pop("par_commune", None) or {}) if isinstance(local, dict) else {}

    def dump(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()

    return {
        code: _sha(common.encode(), dump(local), dump(per_commune.get(code)), dump(p))
        for code, p in params.items()
    }


def up_to_date(entry: dict[str, Any] | None, digest: str, folder: Path) -> bool:
    """True when the commune's last outcome was a success with the same fingerprint and its files are all there."""
    return bool(
        entry and entry.get("statut") in ("ok", "ignore") and entry.get("empreinte") == digest
        and entry.get("fichiers") and all((folder / f).is_file() for f in entry["fichiers"])
    )


def read_manifest(output: Path) -> dict[str, Any]:
    """The manifest of the batch in ``output``, or an empty one."""
    path = Path(output) / MANIFEST
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"schema": SCHEMA, "communes": {}}


def write_manifest(output: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` into ``output`` atomically, stamped with the time."""
    manifest["mis_a_jour"] = dt.datetime.now().isoformat(timespec="seconds")
    write_atomic(output / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
