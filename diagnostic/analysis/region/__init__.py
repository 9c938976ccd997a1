"""The regional synthesis (``diagnostic region``): needs against mediation posts, trends, opportunities.

:func:`build_synthesis` computes it from a catalogue (reusing a batch's results);
:func:`write_synthesis` writes ``synthese_regionale.html`` and ``synthese_regionale.json``.
"""
