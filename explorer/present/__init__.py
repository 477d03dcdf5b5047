"""Turning records into answers: results tables, the Pareto front, figures, reports, links, the 'why'."""
