"""Computing the diagnostic: indicators, needs, recommendations, partners, evaluation, regional synthesis."""
