"""`python -m ash_neuro.train`: pre-train an ASH-Net on the procedural world.

One readable loop (`ash_neuro.loop.fit`, shared with fine-tuning): data, forward (all
pre-training losses), backward, step, log, evaluate, checkpoint. Resuming restores weights,
optimiser, scheduler, step, data position and every RNG, so a killed run continues to the same
result. Launch with `torchrun` for several processes: the objective is wrapped in PyTorch's
DistributedDataParallel and only rank 0 logs and saves.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ash_neuro.config import Config, load_config
from ash_neuro.data.anchors import AnchorCollator
from ash_neuro.data.concepts import with_concept_targets, with_concept_vocabulary
from ash_neuro.data.datasets import CaptionDataset, Collator, first_images, retrieval_split
from ash_neuro.data.sources import check_world, configured_source, data_identity
from ash_neuro.errors import cli_entry
from ash_neuro.loop import add_run_arguments, fit, resolve_resume, run_overrides, run_session
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.backbones import (
    freeze,
    pretrained_lr_scales,
    resolve_backbones,
    run_tokenizer,
)
from ash_neuro.models.factory import (
    PRETRAIN,
    build_model,
    check_components,
    describe_checkpoint,
    reads_instance_maps,
)
from ash_neuro.objective import PretrainingObjective
from ash_neuro.retrieval import evaluate_retrieval
from ash_neuro.runtime import is_main_process
from ash_neuro.tasks.retrieval import Retrieval


def evaluate(
    model: ASHNet, cfg: Config, tokenizer, device: torch.device, split: str
) -> dict[str, float]:
    """ITC retrieval Recall@1/5/10 both ways on the first `train.eval_limit` images of a split;
    `n` is the number of captions."""
    source = configured_source(cfg, split)
    panoptic = reads_instance_maps(cfg, source)
    data = retrieval_split(source, split, cfg.train.eval_limit, panoptic)
    metrics = evaluate_retrieval(model, data, tokenizer, cfg.model.text.max_len, device)
    return {**metrics, "n": len(data.texts)}


def train(cfg: Config, out: Path, resume: bool = False) -> dict:
    """Pre-train per `cfg` on the world, checkpointing into `out`; returns the final
    validation metrics. Pretrained backbones (`model.*.pretrained`) set the dimensions they
    imply and the tokenizer (the text backbone's own)."""
    cfg = resolve_backbones(cfg)
    check_components(cfg)
    check_world(cfg)
    data = data_identity(cfg)
    with run_session(cfg, out) as (device, dist):
        source = configured_source(cfg, "train")
        cfg = with_concept_vocabulary(cfg, source)  # the checkpoint's config keeps the words
        state = resolve_resume(out, resume, cfg, PRETRAIN, data)
        tokenizer = run_tokenizer(cfg)
        dataset = CaptionDataset(
            source,
            "train",
            tokenizer,
            cfg.model.text.max_len,
            caption="random",
            with_panoptic=reads_instance_maps(cfg, source),
        )
        dataset = with_concept_targets(first_images(dataset, cfg.train.image_fraction), cfg, source)
        model = build_model(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
        freeze(model, cfg.train.freeze)
        if model.concepts is not None:
            model.concepts.set_words(tokenizer)
        model.to(device)
        objective = PretrainingObjective(model, cfg.loss, tokenizer)
        collate: Collator = Collator(tokenizer, cfg.model.text.max_len)
        if "anchors" in objective.batch_needs:  # CMAL: each caption's anchor points
            collate = AnchorCollator(tokenizer, cfg.model.text.max_len, source, cfg.loss.anchors)
        return fit(
            name="pretrain",
            cfg=cfg,
            out=out,
            device=device,
            dist=dist,
            model=model,
            objective=objective,
            dataset=dataset,
            collate_fn=collate,
            state=state,
            validate=lambda: evaluate(model, cfg, tokenizer, device, "val"),
            headline=Retrieval.headline,
            description=describe_checkpoint(
                PRETRAIN, cfg, tokenizer, data, backbones=model.backbone_records
            ),
            lr_scales=pretrained_lr_scales(cfg),
        )


@cli_entry
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ash_neuro.train", description=__doc__)
    add_run_arguments(parser, default_config="configs/default.yaml", out="runs/default")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, run_overrides(args))
    out = Path(args.out)
    start = time.perf_counter()
    metrics = train(cfg, out, resume=args.resume)
    if is_main_process():
        print(f"done in {time.perf_counter() - start:.0f} s; checkpoint: {out / 'ckpt.pt'}")
    return metrics


if __name__ == "__main__":
    main()
