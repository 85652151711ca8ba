"""The live Dash dashboard (built on the twin's public API; the twin never imports it)."""
