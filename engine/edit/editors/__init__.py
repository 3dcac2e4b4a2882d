"""2D image editors behind one interface: procedural (offline default), diffusers, HTTP image-edit endpoint."""

from engine.edit.editors.base import (
    EDITOR_BACKENDS, EditedImage, EditorError, EditorSettings, ImageEditor, composite, make_editor,
)

__all__ = ["EDITOR_BACKENDS", "EditedImage", "EditorError", "EditorSettings", "ImageEditor", "composite",
           "make_editor"]
