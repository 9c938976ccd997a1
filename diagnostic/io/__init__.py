"""Reading inputs: catalogues, territories, reference tables, official sources and their download."""
