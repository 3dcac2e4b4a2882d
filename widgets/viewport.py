"""The 3D viewport: shows the frames the render thread delivers and turns mouse input into camera changes.

It paints a read-back image (the renderer draws offscreen through EGL, so the same path works under
offscreen Qt, Xvfb and desktops). Mouse: left drag orbits, middle or shift+left drag pans, the wheel
zooms, a double-click resets the camera. The camera lives in the session model; this widget only
writes it back through model.set_camera / model.reset_camera.

Over the picture it paints the frame-rate readout (View → Show FPS; "idle" when nothing is being drawn),
a "Before edits" badge while the view shows the avatar without its layers, and a hint for first-time
users (`set_hint`) that goes away once the camera is moved by hand, or when the window calls
`dismiss_hint` because the user did something else that shows they found their way (`hintDismissed`).

During a before/after comparison (model.comparing) the frame shows a vertical divider (drawn by the frame
pipeline, engine/view/overlays.py); dragging it moves model.split, and "Before" / "After" are written
at the top of either side.

The model is typed as widgets.session_view.SessionView (app.session.SessionModel provides it).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRectF, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.session_view import SessionView

ORBIT_DEG_PER_PX = 0.4  # camera degrees per pixel of drag
ZOOM_PER_NOTCH = 0.9  # distance factor per wheel notch (120 units) toward the scene
SPLIT_GRAB_PX = 10  # a press this close to the before/after divider drags it


def fps_text(fps: float) -> str:
    """The frame-rate readout: "idle" for 0 (nothing being drawn), else "12.3 fps"."""
    return "idle" if fps <= 0 else f"{fps:.1f} fps"


class Viewport(QWidget):
    """Displays frames (objects with .image [H, W, 3] uint8, .latency_ms, .backend) and drives the camera."""

    sizeChanged = Signal(int, int)  # new size in device pixels
    hintDismissed = Signal()  # the first-run hint went away: the user moved the camera or did something else

    def __init__(self, model: SessionView, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self._image: QImage | None = None
        self._frame: object | None = None
        self._fps = 0.0
        self._drag: tuple[str, QPointF] | None = None  # ("orbit" | "pan" | "split", last position)
        self.setMouseTracking(True)  # the cursor shows where the divider can be grabbed
        self.hint = ""  # first-run hint painted at the bottom ("" for none)
        self.frames_shown = 0
        model.viewOptionsChanged.connect(self.update)
        model.compareChanged.connect(self._on_compare)
        model.avatarChanged.connect(self._on_avatar)

    # ---- frames ------------------------------------------------------------------------------
    def show_frame(self, frame: object) -> None:
        """Display a finished frame (called in the GUI thread)."""
        image = np.ascontiguousarray(frame.image)
        h, w = image.shape[:2]
        self._image = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self._frame = frame
        self.frames_shown += 1
        self.update()

    def set_fps(self, fps: float) -> None:
        """The frame rate to show in the corner (0: idle)."""
        self._fps = fps
        self.update()

    def set_hint(self, text: str) -> None:
        """Show a hint at the bottom of the view until it is dismissed ("" hides it)."""
        self.hint = text
        self.update()

    def dismiss_hint(self) -> None:
        """The user did something meaningful (here: moved the camera by hand): the hint has done its work."""
        if self.hint:
            self.set_hint("")
            self.hintDismissed.emit()

    @property
    def frame(self) -> object | None:
        """The frame on screen (None before the first)."""
        return self._frame

    def device_size(self) -> tuple[int, int]:
        dpr = self.devicePixelRatioF()
        return max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr))

    def _on_avatar(self) -> None:
        self._image, self._frame = None, None
        self.update()

    # ---- painting ----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        bg = self.model.view_options.background
        p.fillRect(self.rect(), QColor.fromRgbF(*bg))
        if self._image is None:
            p.setPen(QColor(200, 200, 205))
            text = "Loading avatar…" if self.model.avatar is None else "Rendering…"
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, text)
        else:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(QRectF(self.rect()), self._image)
            if self.model.view_options.fps:
                frame = self._frame
                self._paint_box(p, f"{fps_text(self._fps):>8}   {frame.latency_ms:4.0f} ms   {frame.backend}   "
                                   f"{self._image.width()}×{self._image.height()}", "top-left", mono=True)
            if self.model.view_options.before:
                self._paint_box(p, "Before edits (B shows them again)", "top-right")
            if getattr(self._frame, "split", None) is not None:
                self._paint_sides(p, self._frame.split)
        if self.hint:
            self._paint_box(p, self.hint, "bottom")
        p.end()

    def _paint_box(self, p: QPainter, text: str, where: str, mono: bool = False) -> None:
        """Text on a translucent rounded box in a corner ("top-left", "top-right") or at the bottom centre."""
        font = QFont(self.font())
        if mono:
            font.setStyleHint(QFont.StyleHint.Monospace)
            font.setFamily("monospace")
            font.setPointSizeF(max(8.0, font.pointSizeF() * 0.9))
        p.setFont(font)
        room = self.rect().adjusted(10, 10, -10, -10)
        flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
        box = p.fontMetrics().boundingRect(room, flags, text).adjusted(-10, -6, 10, 6)
        if where == "top-left":
            box.moveTopLeft(room.topLeft())
        elif where == "top-right":
            box.moveTopRight(room.topRight())
        else:
            box.moveCenter(QPoint(room.center().x(), room.bottom() - box.height() // 2 - 8))
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 160))
        p.drawRoundedRect(box, 5, 5)
        p.setPen(QColor(225, 230, 235))
        p.drawText(box, flags, text)

    def _paint_sides(self, p: QPainter, split: float) -> None:
        """ "Before" and "After" at the top of either side of the divider."""
        cut = split * self.width()
        p.setPen(QColor(235, 238, 242))
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        top = 44 if self.model.view_options.fps else 12
        if cut > 70:
            p.drawText(QRectF(0, top, cut - 10, 20), Qt.AlignmentFlag.AlignRight, "Before")
        if self.width() - cut > 70:
            p.drawText(QRectF(cut + 10, top, self.width() - cut - 10, 20), Qt.AlignmentFlag.AlignLeft, "After")

    # ---- the before/after divider --------------------------------------------------------------------
    def _on_compare(self) -> None:
        if not self.model.comparing and self._drag is not None and self._drag[0] == "split":
            self._drag = None
        self.update()

    def near_divider(self, x: float) -> bool:
        """A press at x (widget pixels) grabs the before/after divider."""
        split = self.model.split
        return self.model.comparing and split is not None and abs(x - split * self.width()) <= SPLIT_GRAB_PX

    def divider_x(self) -> float | None:
        """Where the divider is, in widget pixels (None: no comparison)."""
        split = self.model.split
        return split * self.width() if self.model.comparing and split is not None else None

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.sizeChanged.emit(*self.device_size())

    # ---- mouse -------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        button, shift = event.button(), bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if button == Qt.MouseButton.LeftButton and not shift and self.near_divider(event.position().x()):
            self._drag = ("split", event.position())
            self.setCursor(Qt.CursorShape.SplitHCursor)
        elif button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and shift):
            self._drag = ("pan", event.position())
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        elif button == Qt.MouseButton.LeftButton:
            self._drag = ("orbit", event.position())
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            if event.buttons() == Qt.MouseButton.NoButton:
                near = self.near_divider(event.position().x())
                self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)
            return
        if self.model.avatar is None:
            return
        mode, last = self._drag
        pos = event.position()
        if mode == "split":
            self._drag = (mode, pos)
            self.model.set_compare(None, min(1.0, max(0.0, pos.x() / max(1, self.width()))))
            event.accept()
            return
        dx, dy = pos.x() - last.x(), pos.y() - last.y()
        self._drag = (mode, pos)
        cam = self.model.camera
        if mode == "orbit":
            self.model.set_camera(cam.orbited(-dx * ORBIT_DEG_PER_PX, dy * ORBIT_DEG_PER_PX))
        else:
            self.model.set_camera(cam.panned(dx, dy, max(1, self.height())))
        self.dismiss_hint()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        notches = event.angleDelta().y() / 120.0
        if notches and self.model.avatar is not None:
            self.model.set_camera(self.model.camera.zoomed(ZOOM_PER_NOTCH ** notches))
            self.dismiss_hint()
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.model.reset_camera()
        event.accept()
