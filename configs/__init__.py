"""The default configs, installed as the package data of `tclap.configs` (see pyproject.toml)."""
