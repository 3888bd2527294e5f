"""Implementation files of ``ember.nn.functional`` (grouped by family)."""
