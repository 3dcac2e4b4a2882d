"""Training on several processes (torch.distributed, gloo on the CPU, launched by torchrun through
`dynamicavatars train --nproc 2`): two ranks give the parameters of one process rendering the same frames
per step, through a densification; a stopped run resumes on the same or another number of ranks and
continues the same curve. Plus the pieces without processes: rank shares, torchrun's environment, the
config file, the forwarded arguments and the merge of the ranks' progress lines."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app.cli import build_parser
from app.commands.train import config_from, forwarded
from app.train_launch import RankBoard, parse_line, torchrun_command
from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import read_dataset
from engine.head.model import load_head
from engine.io.atomic import FileFormatError
from engine.train.checkpoint import load_checkpoint
from engine.train.config import DensifyConfig, TrainConfig, read_config, write_config
from engine.train.distributed import Ranks, from_env, rank_device
from engine.train.run import train
from engine.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
ITERS, STOP = 8, 4  # densification at iterations 3 and 6: one before the stop, one after
CONFIG = TrainConfig(iters=ITERS, resolution=32, frames_per_step=2, eval_interval=0, preview_interval=0,
                     checkpoint_interval=0, densify=DensifyConfig(start=3, interval=3, stop_fraction=1.0))
TOL = {"rtol": 1e-5, "atol": 1e-6}  # float sums in another order (one process sums frame gradients itself)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "ds"
    return generate(out, SynthConfig(size=32, train_frames=2, test_frames=1, train_cameras=2, heldout_cameras=1))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return write_config(CONFIG, tmp_path_factory.mktemp("ddp_config") / "train_config.json")


@pytest.fixture(scope="module")
def reference(dataset) -> dict[int, dict]:
    """One process rendering both frames of every step: its state after STOP and after ITERS iterations."""
    trainer = Trainer(load_head("demo"), read_dataset(dataset), CONFIG)
    states = {}
    for _ in range(ITERS):
        trainer.step()
        if trainer.iteration in (STOP, ITERS):
            states[trainer.iteration] = copy.deepcopy(trainer.state_dict())  # Adam's state dicts are shared
    return states


def _cli(*args: str) -> tuple[int, list[dict], str]:
    """`python -m app.cli train ARGS` in a child process -> (exit code, progress lines, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    lines = [line for text in done.stdout.splitlines() if (line := parse_line(text)) is not None]
    return done.returncode, lines, done.stderr


def _assert_same_state(state: dict, expected: dict) -> None:
    assert state["iteration"] == expected["iteration"]
    assert torch.equal(state["extras"]["binding"], expected["extras"]["binding"])
    assert torch.equal(state["extras"]["labels"], expected["extras"]["labels"])
    for name, value in expected["params"].items():
        torch.testing.assert_close(state["params"][name], value, **TOL, msg=lambda m, name=name: f"{name}: {m}")
    moments = [s["exp_avg_sq"] for s in state["optimizer"]["state"].values()]
    for got, want in zip(moments, [s["exp_avg_sq"] for s in expected["optimizer"]["state"].values()], strict=True):
        torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(state["densify"]["grad_sum"], expected["densify"]["grad_sum"], **TOL)
    assert [h["iteration"] for h in state["history"]] == [h["iteration"] for h in expected["history"]]
    torch.testing.assert_close(torch.tensor([h["loss"] for h in state["history"]]),
                               torch.tensor([h["loss"] for h in expected["history"]]), **TOL)


@pytest.fixture(scope="module")
def two_rank_stop(dataset, config_file, tmp_path_factory) -> tuple[Path, list[dict]]:
    """Two ranks (torchrun, gloo) stopped at iteration STOP of ITERS: the output folder and progress lines."""
    out = tmp_path_factory.mktemp("ddp_runs") / "two_ranks"
    code, lines, err = _cli(str(dataset), "--out", str(out), "--config", str(config_file), "--nproc", "2",
                            "--stop-at", str(STOP), "--progress", "jsonl")
    assert code == 0, err[-3000:]
    return out, lines


@pytest.mark.slow
def test_two_ranks_through_a_densification_equal_one_process_over_the_same_frames(two_rank_stop, reference):
    out, lines = two_rank_stop
    steps = [line for line in lines if line["event"] == "step"]
    assert {line["rank"] for line in steps} == {0, 1} and {line["world"] for line in steps} == {2}
    for iteration in range(1, STOP + 1):
        pair = [line for line in steps if line["iteration"] == iteration]
        assert len(pair) == 2 and [p["rank_frames"] for p in pair] == [1, 1], pair  # each renders one of the two
        assert pair[0]["loss"] == pair[1]["loss"]  # the step's loss, summed over the ranks, is the same on both
        assert pair[0]["rank_loss"] != pair[1]["rank_loss"]  # of different frames
    counts = [line["gaussians"] for line in steps if line["rank"] == 0]
    assert counts[2] != counts[1], "no densification at iteration 3"
    results = {line["rank"]: line for line in lines if line["event"] == "result"}
    assert results[0]["cancelled"] and results[0]["iterations"] == STOP and results[1]["iterations"] == STOP
    _assert_same_state(load_checkpoint(out / "checkpoint.pt"), reference[STOP])
    assert (out / "avatar" / "point_cloud.ply").is_file()


@pytest.mark.slow
def test_a_stopped_run_resumes_on_two_ranks_and_continues_the_same_curve(two_rank_stop, dataset, config_file,
                                                                        reference, tmp_path):
    out = tmp_path / "resumed_on_two"
    shutil.copytree(two_rank_stop[0], out)
    code, lines, err = _cli(str(dataset), "--out", str(out), "--config", str(config_file), "--nproc", "2", "--resume",
                            "--progress", "jsonl")
    assert code == 0, err[-3000:]
    first = min(line["iteration"] for line in lines if line["event"] == "step")
    assert first == STOP + 1
    result = next(line for line in lines if line["event"] == "result" and line["rank"] == 0)
    assert not result["cancelled"] and result["iterations"] == ITERS and result["metrics"]["val"]["psnr"] > 10
    _assert_same_state(load_checkpoint(out / "checkpoint.pt"), reference[ITERS])


@pytest.mark.slow
def test_a_run_stopped_on_two_ranks_resumes_on_one_and_continues_the_same_curve(two_rank_stop, dataset, reference,
                                                                               tmp_path):
    out = tmp_path / "resumed_on_one"
    shutil.copytree(two_rank_stop[0], out)
    result = train(dataset, out, replace(CONFIG, frames_per_step=0), resume=True)  # 0: the checkpoint's (2)
    assert result.iterations == ITERS and not result.cancelled and result.ranks == Ranks()
    _assert_same_state(load_checkpoint(out / "checkpoint.pt"), reference[ITERS])


def test_a_step_is_the_mean_over_its_frames(dataset):
    """Two frames per step on one process: its first update equals Adam's on the mean of the two frames'
    gradients, each taken alone."""
    data, head = read_dataset(dataset), load_head("demo")
    pair = Trainer(head, data, CONFIG)
    draw = torch.Generator()
    draw.set_state(pair.generator.get_state())
    picks = torch.randint(len(pair.train_frames), (2,), generator=draw).tolist()
    pair.step()
    grads = []
    for index in picks:
        single = Trainer(head, data, replace(CONFIG, frames_per_step=1))
        single.optimizer.zero_grad()
        single._backward([index], 1)
        grads.append(single.params["xyz"].grad.clone())
    assert picks[0] != picks[1] and not torch.equal(grads[0], grads[1])
    mean = (grads[0] + grads[1]) / 2
    lr = pair.optimizer.param_groups[0]["lr"]
    # Adam's first step moves each coordinate by lr·sign(g) (eps 1e-15): the sign of the mean gradient
    moved = pair.params["xyz"].detach() - single.params["xyz"].detach()
    clear = mean.abs() > 1e-4 * (grads[0].abs() + grads[1].abs()) + 1e-10
    disagree = clear & (grads[0].sign() != grads[1].sign())  # where the mean differs from either frame alone
    assert int(disagree.sum()) > 100
    torch.testing.assert_close(moved[clear], -lr * mean.sign()[clear], rtol=1e-3, atol=1e-9)


def test_rank_shares_and_torchrun_environment():
    picks = [5, 2, 7, 2, 0]
    assert Ranks(0, 2).share(picks) == [5, 7, 0] and Ranks(1, 2).share(picks) == [2, 2]
    assert Ranks(2, 3).share([1, 2]) == []  # more ranks than frames: this one renders nothing
    assert from_env({}) is None
    assert from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}) == Ranks(3, 4, 1, 2)
    with pytest.raises(ValueError, match="RANK=4 WORLD_SIZE=4"):
        from_env({"RANK": "4", "WORLD_SIZE": "4"})
    assert rank_device("cpu", Ranks(1, 2, 1, 2)) == "cpu"
    assert rank_device("cuda", Ranks(3, 4, 1, 2)) == "cuda:1" and rank_device("cuda:1", Ranks()) == "cuda:1"


def test_config_file_round_trips_and_names_its_problems(tmp_path):
    path = write_config(CONFIG, tmp_path / "c.json")
    assert read_config(path) == CONFIG
    (tmp_path / "bad.json").write_text(json.dumps({"iters": "many", "densify": {}}))
    with pytest.raises(FileFormatError, match=r"bad.json: setting iters must be int, got 'many'"):
        read_config(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text(json.dumps({"densify": {"every": 3}}))
    with pytest.raises(FileFormatError, match=r"odd.json: unknown setting\(s\) every in densify"):
        read_config(tmp_path / "odd.json")


def test_cli_options_override_the_config_file_and_reach_every_process(config_file):
    parser = build_parser()
    args = parser.parse_args(["train", "ds", "--out", "o", "--config", str(config_file), "--iters", "20", "--nproc",
                              "2", "--seed", "3", "--stop-at", "10"])
    config = config_from(args)
    assert config.iters == 20 and config.seed == 3 and config.resolution == CONFIG.resolution
    assert config.densify == CONFIG.densify and config.frames_per_step == 2
    again = parser.parse_args(["train", *forwarded(args)])
    assert config_from(again) == config and again.stop_at == 10 and again.nproc == 1
    command = torchrun_command(2, forwarded(args))
    assert command[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    assert command[6:8] == ["app.cli", "train"] and "--nproc" not in command


def test_the_ranks_progress_lines_merge():
    board = RankBoard()
    board.add({"event": "step", "rank": 1, "world": 2, "pid": 11, "iteration": 3, "rank_frames": 1,
               "compute_s": 0.2, "sync_s": 0.01, "seconds": 1.5})
    assert "rank 1: it 3 · 2.00 it/s · 1 frame(s) · compute 200 ms · sync 10 ms" in board.summary()
    assert "1 process(es) starting" in board.summary() and board.iteration == 3
    board.add({"event": "step", "rank": 0, "world": 2, "pid": 10, "iteration": 2, "rank_frames": 1,
               "compute_s": 0.1, "sync_s": 0.1, "seconds": 1.0})
    assert board.iteration == 2 and board.pids == {0: 10, 1: 11}
    board.add({"event": "result", "rank": 0, "world": 2, "iterations": 2, "cancelled": True})
    assert board.result["cancelled"] and board.summary().splitlines()[0].startswith("rank 0: done")
    assert parse_line('{"event": "step", "rank": 0}') == {"event": "step", "rank": 0}
    assert parse_line("WARNING: something") is None and parse_line('{"other": 1}') is None


def _sync_rank(rank: int, store: str, drift: float, results) -> None:
    import torch.distributed as dist

    from engine.train.distributed import check_in_sync

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        xyz = torch.ones(4, 3) + (drift if rank == 1 else 0.0)
        check_in_sync({"xyz": xyz, "binding": torch.arange(4)}, Ranks(rank, 2, rank, 2))
        results.put((rank, "in step"))
    except RuntimeError as exc:
        results.put((rank, str(exc)))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("drift", [0.0, 1e-3])
def test_ranks_out_of_step_are_refused_on_every_rank(tmp_path, drift):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # the children have torch already: no second import
    results = ctx.Queue()
    procs = [ctx.Process(target=_sync_rank, args=(r, str(tmp_path / "store"), drift, results)) for r in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    said = dict(results.get(timeout=5) for _ in procs)
    if drift == 0.0:
        assert said == {0: "in step", 1: "in step"}
    else:
        for rank in (0, 1):
            assert "training ranks out of step: rank 1's xyz has 4 rows summing to 12.012" in said[rank], said
