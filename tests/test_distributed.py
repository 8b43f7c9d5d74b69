"""Training under torchrun (gloo on the CPU): two processes compute what one does with their
batches together, resume bit for bit, refuse another process count, and all stop together."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from ash_neuro import train as train_module
from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.errors import CheckpointError
from tests.conftest import ROOT, TINY_MODEL, TINY_TRAIN, TINY_WORLD

pytestmark = pytest.mark.slow
# ITC and STUA gather every process's batch; the other losses draw per process (ITM negatives,
# MLM masks, augmented views) or are not means over examples (the rate regulariser), so the
# comparison with one process runs these two alone.
GATHERED_LOSSES = [
    "loss.weights.itm=0",
    "loss.weights.mlm=0",
    "loss.weights.spike_contrastive=0",
    "loss.weights.spike_rate=0",
]
# Two sum orders of the same float32 numbers, 3 AdamW steps: measured max |diff| 1.5e-6 (weights
# of scale 1e-2..1), except the attention in-projection biases: their key part has an exactly
# zero gradient (softmax ignores a shift), which Adam turns into steps of pure rounding noise,
# 2.0e-5 measured. A real difference (half the batch, below) is over 1e-3.
ATOL = 5e-6
ATOL_KEY_BIAS = 1e-4


def overrides(world, *extra: str) -> list[str]:
    return [*TINY_WORLD, *TINY_MODEL, *TINY_TRAIN, f"world.path={world}", *extra]


def run(out, world, *extra: str, processes: int = 1, entry=("-m", "ash_neuro.train")):
    launch = [sys.executable]
    if processes > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*launch, *entry, "--out", str(out), *overrides(world, *extra)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)


def weights(out) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "ckpt.pt")["model"]


def test_two_processes_equal_one_with_the_same_global_batch(tiny_world, tmp_path):
    one = run(tmp_path / "one", tiny_world, "train.max_steps=3", *GATHERED_LOSSES)
    assert one.returncode == 0, one.stderr
    two = run(
        tmp_path / "two",
        tiny_world,
        "train.max_steps=3",
        "train.batch_size=8",
        *GATHERED_LOSSES,
        processes=2,
    )
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("done in") == 1  # rank 0 alone reports
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    assert difference(a, b, but="in_proj_bias") < ATOL
    assert difference(a, b) < ATOL_KEY_BIAS
    assert load_checkpoint(tmp_path / "two" / "ckpt.pt")["progress"]["world_size"] == 2
    # the comparison can fail: one process on half the batch ends elsewhere
    half = run(tmp_path / "half", tiny_world, "train.max_steps=3", "train.batch_size=8",
               *GATHERED_LOSSES)  # fmt: skip
    assert half.returncode == 0, half.stderr
    assert difference(a, weights(tmp_path / "half"), but="in_proj_bias") > 1e-3


def difference(a: dict, b: dict, but: str = "") -> float:
    """The largest absolute difference between two state dicts' floating-point entries (those
    whose name contains `but` left out)."""
    keys = [k for k in a if a[k].is_floating_point() and not (but and but in k)]
    return max(float((a[k] - b[k]).abs().max()) for k in keys)


def test_a_killed_two_process_run_resumes_bit_for_bit(tiny_world, tmp_path):
    # warm-up longer than the run: the learning rate of a step does not depend on max_steps
    common = ("train.batch_size=8", "train.warmup_steps=10", "train.ckpt_every=3")
    straight = run(tmp_path / "straight", tiny_world, "train.max_steps=5", *common, processes=2)
    assert straight.returncode == 0, straight.stderr
    first = run(tmp_path / "resumed", tiny_world, "train.max_steps=3", *common, processes=2)
    assert first.returncode == 0, first.stderr
    state = load_checkpoint(tmp_path / "resumed" / "ckpt.pt")
    assert state["progress"]["step"] == 3 and len(state["rng"]) == 2  # each rank's own RNG
    resumed = run(
        tmp_path / "resumed", tiny_world, "train.max_steps=5", *common, "--resume", processes=2
    )
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    for key in a:
        assert torch.equal(a[key], b[key]), key

    # one process cannot continue what two began
    cfg = load_config(ROOT / "configs" / "default.yaml", overrides(tiny_world, *common))
    with pytest.raises(CheckpointError, match="trained by 2 process.es., this run has 1"):
        train_module.train(cfg, tmp_path / "resumed", resume=True)


def test_a_nan_on_one_rank_stops_every_rank(tiny_world, tmp_path):
    start = time.perf_counter()
    entry = (str(ROOT / "tests" / "distributed_nan_run.py"),)
    result = run(
        tmp_path, tiny_world, "train.batch_size=8", "train.max_steps=4", processes=2, entry=entry
    )
    assert result.returncode != 0
    assert "loss became nan on rank 1 at step 2" in result.stderr
    assert "the loss of another process became non-finite at step 2" in result.stderr
    assert time.perf_counter() - start < 200  # rank 0 did not wait on a dead all-reduce
