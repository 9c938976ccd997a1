"""Showing it: report pages, sections, maps, network view, PDF and the files left beside a report."""
