"""Reading ingest's inputs: videos (time range, stride, rotation), image folders, photos, and clear errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from engine.track.clip import face_crop
from engine.track.sources import FrameSelection, IngestError, iter_frames, probe, read_frame, source_kind
from engine.track.synthetic import write_mp4


def _numbered(n: int, size: tuple[int, int] = (48, 32)) -> list[np.ndarray]:
    """Frames whose left half's brightness is 20·index (readable back through H.264)."""
    w, h = size
    frames = []
    for i in range(n):
        image = np.zeros((h, w, 3), np.uint8)
        image[:, : w // 2] = 20 * i
        frames.append(image)
    return frames


def _index(image: np.ndarray) -> int:
    return int(round(float(image[:, : image.shape[1] // 4].mean()) / 20))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_mp4(tmp_path_factory.mktemp("v") / "clip.mp4", _numbered(12), fps=10.0, crf=0)


def test_probe_and_every_frame(video: Path) -> None:
    info = probe(video)
    assert (info.kind, info.frames, info.fps, info.width, info.height) == ("video", 12, 10.0, 48, 32)
    frames = list(iter_frames(video))
    assert [f.index for f in frames] == list(range(12))
    assert [_index(f.image) for f in frames] == list(range(12))
    assert frames[3].time == pytest.approx(0.3)


def test_time_range_stride_and_limit(video: Path) -> None:
    picked = list(iter_frames(video, FrameSelection(start=0.25, end=1.0, stride=2)))
    assert [f.index for f in picked] == [3, 5, 7, 9]  # first frame at or after 0.25 s, every second one
    assert [_index(f.image) for f in picked] == [3, 5, 7, 9]
    assert len(list(iter_frames(video, FrameSelection(max_frames=5)))) == 5
    assert _index(read_frame(video, 0.62).image) == 6
    with pytest.raises(ValueError, match="stride"):
        FrameSelection(stride=0)
    with pytest.raises(ValueError, match="start < end"):
        FrameSelection(start=2.0, end=1.0)


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(10))
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        stream.set_display_rotation(90)  # a phone held upright stores landscape frames and this tag
        for image in _numbered(2):
            image[:8, :8] = 255  # a mark in the stored frame's top-left corner
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    frame = next(iter_frames(path))
    assert frame.image.shape == (48, 32, 3)  # upright: the tag's 90° counter-clockwise turn applied
    assert frame.image[-6:, :6].mean() > 200 and frame.image[:6, :6].mean() < 100  # top-left went bottom-left
    assert probe(path).width == 32


def test_image_folder_and_photo(tmp_path: Path) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, image in enumerate(_numbered(4)):
        Image.fromarray(image).save(folder / f"img_{3 - i}.png")  # names sort in reverse of the index
    (folder / "notes.txt").write_text("not an image")
    info = probe(folder)
    assert (info.kind, info.frames, info.fps) == ("images", 4, 1.0)
    frames = list(iter_frames(folder, FrameSelection(start=1, stride=2)))
    assert [(f.index, f.time) for f in frames] == [(1, 1.0), (3, 3.0)]
    assert [_index(f.image) for f in frames] == [2, 0]  # img_1 holds index 2, img_3 index 0
    photo = folder / "img_0.png"
    assert source_kind(photo) == "photo" and probe(photo).frames == 1


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video at all" * 50)
    with pytest.raises(IngestError, match="broken.mp4: cannot be opened as a video"):
        probe(broken)
    with pytest.raises(IngestError, match="nothing.mov: no such file"):
        probe(tmp_path / "nothing.mov")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="empty: the folder holds no images"):
        probe(tmp_path / "empty")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(IngestError, match="a.txt: not a video"):
        probe(tmp_path / "a.txt")
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(b"\x89PNG nonsense")
    with pytest.raises(IngestError, match="bad.png: not a readable image"):
        probe(bad_png)


def test_face_crop_is_square_inside_and_around_the_faces() -> None:
    box = face_crop([(100, 100, 160, 180), (110, 90, 170, 170)], 640, 360, "auto")
    x0, y0, x1, y1 = box
    assert x1 - x0 == y1 - y0 == 180  # 2 × the union's larger side (90)
    assert 0 <= x0 and x1 <= 640 and 0 <= y0 and y1 <= 360
    assert x0 <= 100 and x1 >= 170 and y0 <= 90 and y1 >= 180
    assert face_crop([(0, 0, 300, 300)], 640, 360, "auto")[3] - face_crop([(0, 0, 300, 300)], 640, 360, "auto")[1] == 360
    assert face_crop([], 640, 360, "auto") == (0, 0, 640, 360) == face_crop([(1, 1, 2, 2)], 640, 360, "none")
