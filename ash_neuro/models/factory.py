"""The model factory: a config becomes a network (`build_model`, `build_task_model`), and a
checkpoint becomes it again (`load_model`), the one way back that every command uses.

A checkpoint describes itself (`describe_checkpoint`, saved beside the weights by the training
loop): the full resolved config, the tokenizer (serialised), the vocabulary size and pad id, the
task and its answer vocabulary, the identity of the data it was trained on and, for pretrained
backbones, their records (name, source, architecture: `ash_neuro.models.backbones`). `load_model`
rebuilds the network from that alone, from any directory, with no data file and no backbone
file on disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import Config, config_from_dict, config_to_dict, override_config
from ash_neuro.data.datasets import has_panoptic
from ash_neuro.data.records import Source
from ash_neuro.data.sources import DataIdentity
from ash_neuro.data.tokenizer import tokenizer_from_record, tokenizer_record
from ash_neuro.errors import CheckpointError, ConfigError
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.task_model import TaskModel
from ash_neuro.registry import (
    ADAPTERS,
    ANCHOR_SOURCES,
    ASSOCIATIVE_PROMPTS,
    FUSION_ENCODERS,
    GRAPH_ENCODERS,
    LOSSES,
    SPIKE_CODINGS,
    SPIKING_ENCODERS,
    TASKS,
    TEXT_ENCODERS,
    VISUAL_ENCODERS,
)

BACKBONE = "backbone."
PRETRAIN, FINETUNE = "pretrain", "finetune"


def check_components(cfg: Config) -> None:
    """Every `kind`, coding, loss and task `cfg` names is registered; else the one-line error
    (run before a command sets anything up)."""
    model = cfg.model
    VISUAL_ENCODERS.get(model.visual.kind)
    SPIKING_ENCODERS.get(model.spiking.kind)
    SPIKE_CODINGS.get(model.spiking.encoding)
    TEXT_ENCODERS.get(model.text.kind)
    GRAPH_ENCODERS.get(model.graph.kind)
    ADAPTERS.get(model.adapter.kind)
    FUSION_ENCODERS.get(model.fusion.kind)
    ANCHOR_SOURCES.get(cfg.loss.anchors)
    ASSOCIATIVE_PROMPTS.get(cfg.loss.prompt)
    for name in cfg.loss.weights:
        LOSSES.get(name)
    TASKS.get(cfg.finetune.task)


def reads_instance_maps(cfg: Config, source: Source | None = None) -> bool:
    """Whether the visual encoder `cfg` names reads panoptic instance maps (it declares so with
    `reads_instance_maps = True`) and `source`, when given, serves them: what every reader of
    images (datasets, retrieval, deployment, export) passes as `with_panoptic`."""
    reads = bool(getattr(VISUAL_ENCODERS.get(cfg.model.visual.kind), "reads_instance_maps", False))
    return reads and (source is None or has_panoptic(source))


def build_model(
    cfg: Config,
    vocab_size: int,
    pad_token_id: int = 0,
    backbones: Mapping[str, dict] | None = None,
) -> ASHNet:
    """The network described by `cfg.model`, for `cfg.world.image_size` images and a tokenizer
    of `vocab_size` tokens; the ITC temperature starts at `cfg.loss.temperature`. Pretrained
    backbones are read from their files, or rebuilt from `backbones` (a checkpoint's records)."""
    return ASHNet(
        cfg.model,
        vocab_size=vocab_size,
        pad_token_id=pad_token_id,
        image_size=cfg.world.image_size,
        temperature=cfg.loss.temperature,
        backbones=backbones,
    )


def build_task_model(
    cfg: Config,
    vocab_size: int,
    pad_token_id: int = 0,
    answers: Sequence[str] = (),
    backbones: Mapping[str, dict] | None = None,
) -> TaskModel:
    """`build_model`'s backbone with the head of `cfg.finetune.task` (VQA: over `answers`)."""
    task = TASKS.get(cfg.finetune.task)(cfg)
    return TaskModel(build_model(cfg, vocab_size, pad_token_id, backbones), task, answers)


def describe_checkpoint(
    kind: str,
    cfg: Config,
    tokenizer: Any,
    data: DataIdentity,
    task: str | None = None,
    answers: Sequence[str] = (),
    backbones: Mapping[str, dict] | None = None,
) -> dict:
    """What a checkpoint carries beside its weights so that it rebuilds its model alone
    (`backbones`: `ASHNet.backbone_records`, the pretrained parts' records)."""
    return {
        "kind": kind,
        "config": config_to_dict(cfg),
        "text": {
            "vocab_size": len(tokenizer),
            "pad_token_id": int(tokenizer.pad_token_id),
            "tokenizer": tokenizer_record(tokenizer),
        },
        "task": {"name": task, "answers": list(answers)} if task else {},
        "data": data.to_dict(),
        "backbones": dict(backbones or {}),
    }


@dataclass
class LoadedModel:
    """A network rebuilt from a checkpoint: the `TaskModel` (of the checkpoint's own task, or of
    retrieval, which needs no head, for a pre-training one), in eval mode, and what describes
    it."""

    path: Path
    kind: str  # "pretrain" or "finetune"
    cfg: Config
    model: TaskModel
    tokenizer: Any
    data: DataIdentity
    own_task: str | None  # the task a fine-tuning checkpoint was trained for
    state: dict  # the checkpoint as read (weights, progress, metrics, ...)

    @property
    def backbones(self) -> dict[str, dict]:
        """The pretrained backbones' records (none for scratch encoders or older checkpoints)."""
        return dict(self.state.get("backbones", {}))

    @property
    def backbone(self) -> ASHNet:
        return self.model.backbone


def backbone_weights(state: Mapping[str, Any]) -> dict[str, Tensor]:
    """The backbone's weights of a pre-training or a fine-tuning checkpoint."""
    weights = state["model"]
    if state["kind"] == PRETRAIN:
        return dict(weights)
    return {k[len(BACKBONE) :]: v for k, v in weights.items() if k.startswith(BACKBONE)}


def load_model(
    path: str | Path,
    task: str | None = None,
    parts: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
) -> LoadedModel:
    """Rebuild the network of the checkpoint at `path`.

    `task`: the head to load (default: the checkpoint's own task, retrieval for a pre-training
    checkpoint); another task than the checkpoint's own is a one-line error unless it needs no
    head (retrieval). `parts`: the backbone's sub-modules to load (default: every weight);
    the others keep their initialisation. `overrides`: `key=value` changes of the stored config
    that do not change the network (e.g. `finetune.itm_rerank_k=16`, `data.root=...`).
    """
    path = Path(path)
    state = load_checkpoint(path)
    for key in ("kind", "config", "text", "task", "data", "model"):
        if key not in state:
            raise CheckpointError(f"{path} lacks '{key}'; it was not written by this ash-neuro")
    own = state["task"].get("name") if state["kind"] == FINETUNE else None
    task = task or own or "retrieval"
    cfg = config_from_dict(state["config"])
    TASKS.get(task)  # an unknown task is the one-line error listing the tasks
    if task not in ("retrieval", own):
        hint = (
            f"it was fine-tuned for {own}"
            if own
            else f"fine-tune it first: python -m ash_neuro.finetune --task {task} --init {path}"
        )
        raise CheckpointError(f"{path} has no {task} head ({hint})")
    changed = override_config(cfg, [*overrides, f"finetune.task={task}"])
    if config_to_dict(changed)["model"] != config_to_dict(cfg)["model"]:
        raise ConfigError(
            f"overrides may not change the network of {path} (model.* keys); fine-tune a new "
            "model instead"
        )
    cfg = changed
    text = state["text"]
    tokenizer = tokenizer_from_record(text["tokenizer"])
    answers = state["task"].get("answers", ()) if task == own else ()
    model = build_task_model(
        cfg, text["vocab_size"], text["pad_token_id"], answers, state.get("backbones", {})
    )
    if parts is None and task == own:
        _load_weights(model, state["model"], None, path)
    else:
        _load_weights(model.backbone, backbone_weights(state), parts, path)
    model.eval()
    return LoadedModel(
        path=path,
        kind=state["kind"],
        cfg=cfg,
        model=model,
        tokenizer=tokenizer,
        data=DataIdentity(**state["data"]),
        own_task=own,
        state=state,
    )


def _load_weights(
    module: nn.Module, weights: Mapping[str, Tensor], parts: Sequence[str] | None, path: Path
) -> None:
    """Load `weights` into `module` strictly, or only (and all of) its sub-modules `parts`."""
    if parts is None:
        chosen = dict(weights)
    else:
        prefixes = tuple(f"{part}." for part in parts)
        chosen = {k: v for k, v in weights.items() if k.startswith(prefixes)}
        for part in parts:
            built = getattr(module, part, None) is not None  # e.g. no spiking encoder
            if built and not any(k.startswith(f"{part}.") for k in chosen):
                raise CheckpointError(f"{path} holds no weights of the {part}")
    try:
        missing, unexpected = module.load_state_dict(chosen, strict=False)
    except RuntimeError as exc:  # a shape mismatch
        detail = str(exc).strip().splitlines()[-1].strip()[:160]
        raise CheckpointError(
            f"{path} does not fit the network its config builds ({detail}); it was written "
            "by other code"
        ) from None
    if parts is not None:
        missing = [k for k in missing if k.startswith(prefixes)]
    if missing or unexpected:
        first = (missing or unexpected)[0]
        problem = "lacks" if missing else "has an unexpected"
        raise CheckpointError(
            f"{path} {problem} weight {first} for the network its config builds; it was "
            "written by other code"
        )
