"""Payment gateway for public services."""

__version__ = "0.1.0"
