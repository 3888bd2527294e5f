"""``ember.utils``: data loading utilities (``ember.utils.data``)."""

from . import data  # noqa: F401
