"""Painting on the viewport: a transparent overlay widget over the viewport that records strokes.

A stroke is press-to-release. With the "orbit" tool the overlay lets mouse events through to the
viewport (WA_TransparentForMouseEvents); with brush, eraser or lasso it takes them and draws the
stroke live. At release it emits `strokeFinished(Stroke)`; Stroke.rasterize(w, h) turns it into a
soft mask image at the render's resolution (the viewport stretches its image over the widget, so
stroke points are kept in normalised [0, 1] coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen, QPolygonF, QRadialGradient
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class Stroke:
    """One press-to-release stroke."""

    tool: str  # "brush", "eraser" or "lasso"
    points: tuple[tuple[float, float], ...]  # normalised (x, y) in [0, 1] of the viewport image
    radius: float  # brush radius as a fraction of the image height
    hardness: float  # 0 = soft falloff from the centre, 1 = hard edge

    def rasterize(self, width: int, height: int) -> np.ndarray:
        """[H, W] float32 mask in [0, 1] of this stroke on a width x height image."""
        image = QImage(width, height, QImage.Format.Format_ARGB32)
        image.fill(QColor(0, 0, 0, 0))
        p = QPainter(image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pts = [QPointF(x * width, y * height) for x, y in self.points]
        if self.tool == "lasso":
            if len(pts) >= 3:
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(255, 255, 255, 255))
                p.drawPolygon(QPolygonF(pts))
        else:
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Lighten)
            r = max(0.5, self.radius * height)
            for c in _resample(pts, max(0.5, r / 4)):
                grad = QRadialGradient(c, r)
                grad.setColorAt(0.0, QColor(255, 255, 255, 255))
                grad.setColorAt(min(0.999, max(0.0, self.hardness)), QColor(255, 255, 255, 255))
                grad.setColorAt(1.0, QColor(255, 255, 255, 0))
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QBrush(grad))
                p.drawEllipse(c, r, r)
        p.end()
        ptr = image.constBits()
        arr = np.frombuffer(ptr, dtype=np.uint8, count=image.sizeInBytes()).reshape(height, image.bytesPerLine() // 4, 4)
        return (arr[:, :width, 3].astype(np.float32) / 255.0).copy()  # alpha (byte 3 of little-endian ARGB32)


def _resample(points: list[QPointF], step: float) -> list[QPointF]:
    """Points along the polyline every `step` pixels (the first point kept)."""
    if not points:
        return []
    out = [points[0]]
    for a, b in zip(points, points[1:]):
        d = ((b.x() - a.x()) ** 2 + (b.y() - a.y()) ** 2) ** 0.5
        n = int(d // step)
        for k in range(1, n + 1):
            f = k * step / d
            out.append(QPointF(a.x() + f * (b.x() - a.x()), a.y() + f * (b.y() - a.y())))
        out.append(b)
    return out


class MaskPainter(QWidget):
    """Transparent overlay over `target` (the viewport) that records paint strokes."""

    strokeFinished = Signal(object)  # Stroke

    def __init__(self, target: QWidget) -> None:
        super().__init__(target)
        self.target = target
        self.tool = "orbit"
        self.radius_px = 12.0  # brush radius in screen pixels
        self.hardness = 0.6
        self._points: list[QPointF] = []
        self._active = False
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setGeometry(target.rect())
        target.installEventFilter(self)
        self.set_tool("orbit")
        self.show()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.target and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.target.rect())
        return False

    def set_tool(self, tool: str) -> None:
        """'orbit' passes the mouse to the viewport; 'brush', 'eraser', 'lasso' paint."""
        if tool not in ("orbit", "brush", "eraser", "lasso"):
            raise ValueError(f"unknown paint tool {tool!r}")
        self.tool = tool
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, tool == "orbit")
        self.setCursor(Qt.CursorShape.CrossCursor if tool != "orbit" else Qt.CursorShape.ArrowCursor)

    def set_brush(self, radius_px: float, hardness: float) -> None:
        self.radius_px, self.hardness = float(radius_px), float(hardness)

    # ---- mouse ---------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.tool == "orbit" or event.button() != Qt.MouseButton.LeftButton:
            event.ignore()
            return
        self._active = True
        self._points = [event.position()]
        self.update()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._active:
            self._points.append(event.position())
            self.update()
            event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if not self._active:
            return
        self._active = False
        self._points.append(event.position())
        w, h = max(1, self.width()), max(1, self.height())
        stroke = Stroke(self.tool, tuple((p.x() / w, p.y() / h) for p in self._points),
                        self.radius_px / h, self.hardness)
        self._points = []
        self.update()
        event.accept()
        self.strokeFinished.emit(stroke)

    # ---- live feedback ---------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        if not self._points:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath(self._points[0])
        for pt in self._points[1:]:
            path.lineTo(pt)
        colour = QColor(255, 80, 80, 110) if self.tool == "eraser" else QColor(80, 200, 255, 110)
        if self.tool == "lasso":
            p.setPen(QPen(QColor(255, 255, 255, 200), 1.5, Qt.PenStyle.DashLine))
            path.closeSubpath()
            p.drawPath(path)
        else:
            width = 2 * self.radius_px
            p.setPen(QPen(colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
            p.drawPath(path)
        p.end()
