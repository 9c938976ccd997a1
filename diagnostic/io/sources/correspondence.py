"""The 2015 → 2024 QPV correspondence: which 2015 QPVs each 2024 QPV replaces.

The 2024 generation has no indicators of its own yet; until it does, a 2024
QPV is shown with the indicators of its 2015 predecessors, labelled as such.
With several predecessors, counts are summed and rates, medians and indices
population-weighted (a median so combined is an approximation). A new QPV
(``NOUVEAU``) has no predecessor and no indicator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diagnostic.io.catalog import Source
from diagnostic.io.sources._io import LoadReport, read_table, require_keys
from diagnostic.io.sources.insee import IndicatorTable

COLUMNS = {"code_qp": "qp2024", "statut": "statut"}
PREDECESSOR_COLUMNS = ("qp2015_1", "qp2015_2", "qp2015_3")


def load_correspondence(source: Source) -> tuple[pd.DataFrame, LoadReport]:
    """One row per (2024 QPV, 2015 predecessor): ``code_qp``, ``predecessor``, ``statut``."""
    report = LoadReport(source.role, source.path)
    cols = {**COLUMNS, **source.columns}
    df = read_table(source.path, source.role, source.options.get("sep"), source.options.get("encoding"))
    report.rows_read = len(df)
    require_keys(df, cols, ("code_qp",), source)
    preds = [c for c in source.options.get("predecessors", PREDECESSOR_COLUMNS) if c in df]
    long = df.melt(id_vars=[cols["code_qp"]] + ([cols["statut"]] if cols["statut"] in df else []), value_vars=preds,
                   value_name="predecessor")
    long = long.rename(columns={cols["code_qp"]: "code_qp", cols["statut"]: "statut"})
    long = long[long["predecessor"].str.strip() != ""][["code_qp", "predecessor"] + (["statut"] if "statut" in long else [])]
    new = sorted(set(df[cols["code_qp"]]) - set(long["code_qp"]))
    if new:
        report.warn(f"{len(new)} QPV 2024 sans prédécesseur 2015 (nouveaux), donc sans indicateur : {', '.join(new[:5])}.")
    report.rows_kept = len(df)
    return long.reset_index(drop=True), report


def carry_forward(table: IndicatorTable, pairs: pd.DataFrame) -> IndicatorTable:
    """The 2015 table re-expressed on 2024 codes through ``pairs`` (2024 code, predecessor), labelled as such."""
    pop = table.values.get("population")
    values, secret = {}, {}
    for code, group in pairs.groupby("code_qp"):
        preds = [p for p in group["predecessor"] if p in table.values.index]
        if not preds:
            continue
        v = table.values.loc[preds]
        w = pop.loc[preds] if pop is not None else pd.Series(1.0, index=preds)
        row = {}
        for key, spec in table.definitions.iterrows():
            col = v[key]
            if spec["nature"] == "effectif":
                row[key] = float(col.sum()) if col.notna().all() else np.nan
            else:
                ok = col.notna() & w.notna() & (w > 0)
                row[key] = float(np.average(col[ok], weights=w[ok])) if ok.any() else np.nan
        values[code] = row
        secret[code] = table.secret.loc[preds].all().to_dict()
    vals = pd.DataFrame.from_dict(values, orient="index").reindex(columns=table.values.columns).rename_axis("code_qp")
    sec = pd.DataFrame.from_dict(secret, orient="index").reindex(columns=table.secret.columns).fillna(False)
    definitions = table.definitions.copy()
    definitions["source"] = definitions["source"] + " — valeurs des QPV 2015 prédécesseurs (QPV 2024 sans indicateur propre)"
    history = None
    if table.history is not None:
        h = table.history.merge(pairs[["code_qp", "predecessor"]], left_on="code_qp", right_on="predecessor",
                                suffixes=("_2015", ""))
        single = pairs.groupby("code_qp").size() == 1  # a change is only followed for a QPV with one predecessor
        h = h[h["code_qp"].map(single)]
        history = h.drop(columns=["code_qp_2015", "predecessor"])[table.history.columns].reset_index(drop=True)
    return IndicatorTable(vals, sec.astype(bool).rename_axis("code_qp"), definitions, table.source, table.extra_counts,
                          reliability=None, national=table.national, national_reference=table.national_reference,
                          history=history)
