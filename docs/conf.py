"""Sphinx configuration for the flask-sdkauth documentation.

The build runs offline: no intersphinx, and type hints are rendered from the
installed package's annotations only.
"""

from __future__ import annotations

import flask_sdkauth

project = "flask-sdkauth"
author = "flask-sdkauth contributors"
copyright = "flask-sdkauth contributors"
version = flask_sdkauth.__version__
release = flask_sdkauth.__version__

extensions = ["sphinx.ext.autodoc"]

exclude_patterns = ["_build"]
language = "en"
nitpicky = False

# Type hints: shown in the descriptions, written short (``Widget``, not
# ``flask_sdkauth.widgets.Widget``); names that cannot be resolved offline stay as
# written in the source instead of becoming cross-references to other projects.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
# The exception subclasses have no docstrings of their own; do not show the base
# class's text on each of them.
autodoc_inherit_docstrings = False
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"flask-sdkauth {release}"
