"""Image-text retrieval: no new head, the backbone's ITC and ITM heads.

Fine-tuned with ITC + ITM (with hard negatives) as in ALBEF, every other pre-training loss off;
evaluated over the first `limit` images of a split and all their captions (Recall@1/5/10 both
ways by ITC ranking, ITM re-ranking of the top `finetune.itm_rerank_k`, `ash_neuro.retrieval`);
trivial baseline: chance. `n` counts the captions (the text queries).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ash_neuro.data.datasets import CaptionDataset, TaskDataset, retrieval_split
from ash_neuro.data.records import Source
from ash_neuro.losses.mlm import TokenizerInfo
from ash_neuro.metrics import chance_recall
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.outputs import Encode
from ash_neuro.models.task_model import TaskModel
from ash_neuro.objective import PretrainingObjective
from ash_neuro.registry import TASKS
from ash_neuro.retrieval import evaluate_retrieval
from ash_neuro.tasks.base import Task

FINETUNING_LOSSES = ("itc", "itm")


@TASKS.register("retrieval")
class Retrieval(Task):
    name = "retrieval"
    main_metric = "r_mean"
    headline = ("t2i_r1", "t2i_r5", "i2t_r1", "i2t_r5")
    baseline_name = "chance"
    dataset_class = CaptionDataset

    def dataset(self, source: Source, split: str, tokenizer: Any = None) -> TaskDataset:
        """One random caption per image and epoch (for training)."""
        max_len, seed = self.cfg.model.text.max_len, self.cfg.train.seed
        panoptic = self.with_panoptic(source)
        return CaptionDataset(source, split, tokenizer, max_len, seed=seed, with_panoptic=panoptic)

    def build_head(self, backbone: ASHNet, answers: Sequence[str]) -> nn.Module | None:
        return None

    def loss(
        self, model: TaskModel, batch: Mapping[str, Tensor], info: TokenizerInfo
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        if getattr(self, "_objective", None) is None:
            weights = {k: v for k, v in self.cfg.loss.weights.items() if k in FINETUNING_LOSSES}
            cfg = dataclasses.replace(self.cfg.loss, weights=weights)
            self._objective = PretrainingObjective(model.backbone, cfg, info)
        return self._objective(batch)

    @torch.no_grad()
    def evaluate(
        self,
        model: TaskModel,
        source: Source,
        split: str,
        tokenizer: Any,
        device: torch.device,
        limit: int = 0,
        encode: Encode | None = None,
    ) -> dict[str, float]:
        data = retrieval_split(source, split, limit, self.with_panoptic(source))
        metrics = evaluate_retrieval(
            model.backbone,
            data,
            tokenizer,
            self.cfg.model.text.max_len,
            device,
            rerank_k=self.cfg.finetune.itm_rerank_k,
            encode=encode,
        )
        return {**metrics, "n": len(data.texts)}

    def baseline(self, train: Source, source: Source, split: str, limit: int) -> dict[str, float]:
        return chance_recall(retrieval_split(source, split, limit=limit).img2txt)
