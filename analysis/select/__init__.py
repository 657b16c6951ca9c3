"""From records to analysis-ready data: filters, contrasts, doses, moderators."""
