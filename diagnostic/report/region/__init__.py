"""The regional synthesis's page and maps (``synthese_regionale.html``)."""
