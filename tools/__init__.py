"""ember.tools."""
