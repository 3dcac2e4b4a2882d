"""`dynamicavatars export`: video from an orbit or a sequence file, splat files, Ctrl-C cancels cleanly."""

from __future__ import annotations

import contextlib
import signal

import numpy as np
from plyfile import PlyData

from app import cli
from app.commands import export as export_cmd
from engine.avatar.avatar import Avatar
from engine.avatar.files import load_avatar, save_avatar
from engine.avatar.flame_npz import save_flame_params
from engine.avatar.posing import Pose, apply_pose
from engine.project.project_file import Project, save_project
from tests.test_export_video import decode, talking, tiny_avatar
from tests.test_project_file import head_on_disk


def avatar_folder(tmp_path):
    head = head_on_disk(tmp_path / "flame")
    avatar = tiny_avatar(n=150, head=head)
    return save_avatar(avatar, tmp_path / "avatar"), avatar


def test_orbit_and_sequence_videos_and_splats(tmp_path, capsys):
    folder, avatar = avatar_folder(tmp_path)
    out = tmp_path / "orbit.mp4"
    clip = ["--orbit", "--fps", "8", "--size", "64", "48", "--duration", "0.5", "--renderer", "raster"]
    args = ["export", str(folder), "--video", str(out), *clip, "--splats", str(tmp_path / "s.ply"),
            "--gaussianavatars", str(tmp_path / "ga"), "--expr", "expr_0=1.5"]
    assert cli.main(args) == 0
    frames = decode(out)
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3)
    assert "wrote" in capsys.readouterr().out
    # the same orbit without --expr: the held expression must change the pictures
    assert cli.main(["export", str(folder), "--video", str(tmp_path / "neutral.mp4"), *clip]) == 0
    neutral = decode(tmp_path / "neutral.mp4")
    assert len(neutral) == 4
    changed = np.abs(frames[0].astype(int) - neutral[0].astype(int)).max(axis=2) > 20
    assert changed.mean() > 0.1, f"--expr changed {changed.mean():.4f} of the pixels"  # measured 0.31
    # the splat file is the avatar at the held expression, in world space (read back by plyfile)
    posed = avatar.splats(apply_pose(avatar, Pose(expressions={"expr_0": 1.5}))).means.detach().numpy()
    vertex = PlyData.read(str(tmp_path / "s.ply"))["vertex"]
    assert vertex.count == avatar.gaussians.count
    np.testing.assert_allclose(np.stack([vertex[a] for a in "xyz"], 1), posed, rtol=0, atol=1e-5)
    # the GaussianAvatars folder reloads as the same Gaussians with expr_0 held at 1.5
    ga = load_avatar(tmp_path / "ga")
    assert ga.gaussians.equal(avatar.gaussians)
    np.testing.assert_allclose(ga.params.expr[:, 0].numpy(), 1.5, rtol=0, atol=1e-6)
    save_flame_params(talking(avatar.head, 5), tmp_path / "seq.npz")
    assert cli.main(["export", str(folder), "--video", str(tmp_path / "seq.mp4"), "--sequence",
                     str(tmp_path / "seq.npz"), "--size", "32", "--renderer", "raster"]) == 0
    assert len(decode(tmp_path / "seq.mp4")) == 5


def test_project_side_by_side_with_mask(tmp_path):
    _, avatar = avatar_folder(tmp_path)
    project = Project(Avatar(avatar.head, avatar.gaussians, avatar.params, "p"),
                      selections={"left half": avatar.gaussians.xyz[:, 0] > 0})
    save_project(project, tmp_path / "p.dap")
    out = tmp_path / "p.mp4"
    assert cli.main(["export", str(tmp_path / "p.dap"), "--video", str(out), "--side-by-side", "--mask", "left half",
                     "--size", "32", "--duration", "0.25", "--fps", "8", "--renderer", "raster"]) == 0
    assert decode(out)[0].shape == (32, 64, 3)
    assert cli.main(["export", str(tmp_path / "p.dap"), "--video", str(out), "--mask", "nope", "--size", "32"]) == 2


def test_ctrl_c_cancels_without_partial_file(tmp_path, monkeypatch, capsys):
    folder, _ = avatar_folder(tmp_path)

    @contextlib.contextmanager
    def interrupting_bar(label):
        def progress(fraction, message):
            if message.startswith("frame 2/"):
                signal.raise_signal(signal.SIGINT)  # what Ctrl-C in the terminal does
        yield progress

    monkeypatch.setattr(export_cmd, "progress_bar", interrupting_bar)
    before = signal.getsignal(signal.SIGINT)
    code = cli.main(["export", str(folder), "--video", str(tmp_path / "c.mp4"), "--orbit", "--size", "32",
                     "--fps", "10", "--duration", "2", "--renderer", "raster"])
    assert code == 130 and "cancelled" in capsys.readouterr().out
    assert not (tmp_path / "c.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert signal.getsignal(signal.SIGINT) is before
    assert cli.main(["export", str(tmp_path / "missing"), "--video", str(tmp_path / "m.mp4")]) == 2
    assert cli.main(["export", str(folder)]) == 2
