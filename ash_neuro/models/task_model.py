"""TaskModel: the one backbone plus the head of one downstream task.

The task (`ash_neuro.tasks`, chosen by `finetune.task` from `registry.TASKS`) builds the head
and says how a batch flows to it; the encoders, adapter and fusion encoder are the backbone's,
shared by every task (no per-task copy). The batch's images reach the head through an encode
hook (`ash_neuro.tasks.base`): the backbone's own encoders by default, spikes from Lava in a
deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.outputs import Encode, VisualInput, VisualOutput

if TYPE_CHECKING:
    from ash_neuro.tasks.base import Task


class TaskModel(nn.Module):
    """`TaskModel(backbone, task, answers)(batch) -> (logits, spike rates)`; `answers` is the
    output vocabulary of a task that has one (VQA), kept with the weights."""

    def __init__(self, backbone: ASHNet, task: Task, answers: Sequence[str] = ()) -> None:
        super().__init__()
        self.backbone, self.task, self.answers = backbone, task, tuple(answers)
        self.head = task.build_head(backbone, self.answers)

    @property
    def name(self) -> str:
        return self.task.name

    def encode(self, batch: Mapping[str, Tensor], encode: Encode | None = None) -> VisualOutput:
        """The batch's images (every `task.image_suffixes` image, in that order) through the
        encode hook (default: the backbone's encoders) -> `VisualOutput`."""
        suffixes = self.task.image_suffixes

        def gather(key: str) -> Tensor | None:
            if f"{key}{suffixes[0]}" not in batch:
                return None
            return torch.cat([batch[f"{key}{suffix}"] for suffix in suffixes])

        inputs = VisualInput(gather("image"), gather("image_id"), gather("instance_map"))
        if encode is None:
            return self.backbone.encode_image(inputs.image, inputs.instance_map)
        return encode(inputs)

    def forward(
        self, batch: Mapping[str, Tensor], encode: Encode | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if self.head is None:
            raise ValueError(f"{self.name} has no task head: use the backbone's own heads")
        visual = self.encode(batch, encode)
        rates = {name: rate.detach() for name, rate in visual.spike_rates.items()}
        return self.task.logits(self, batch, visual), rates
