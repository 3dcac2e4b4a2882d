"""Reusable Qt widgets (viewport, sliders, timeline, presets). They observe a session model passed in
__init__ and never import app/."""
