"""`python -m ash_neuro.train` with rank 1's loss made NaN at its second step: a torchrun
entry point for tests/test_distributed.py (the real command, one rank broken)."""

import os
import sys

import torch

from ash_neuro import train

real_forward = train.PretrainingObjective.forward
calls = {"n": 0}


def forward(self, batch):
    losses, rates = real_forward(self, batch)
    calls["n"] += 1
    if os.environ["RANK"] == "1" and calls["n"] == 2:
        losses["total"] = losses["total"] * torch.tensor(float("nan"))
    return losses, rates


train.PretrainingObjective.forward = forward
if __name__ == "__main__":
    train.main(sys.argv[1:])
