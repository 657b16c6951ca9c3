"""The report: figures, templates and the builder that writes them."""
