"""The version of gen (here so that modules below ``gen/__init__`` can name it without a cycle)."""

__version__ = "0.1.0"
