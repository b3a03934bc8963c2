"""Sphinx configuration: the docs are Markdown pages read with MyST."""

project = "blockhub"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
master_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
myst_heading_anchors = 3  # "nat.md#punching-through-nat" and the like
