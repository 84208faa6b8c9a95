"""A provider shipped as its own package, to show that a new provider is one folder: `dist/` holds the installed
distribution's metadata declaring the `gateway.adapters` entry point, as `pip install` would write it."""
