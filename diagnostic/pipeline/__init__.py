"""Running it: notebook execution, warm kernels, run and evaluate through one staged path, batch on Dask."""
