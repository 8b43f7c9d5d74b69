"""Typed, validated run configuration.

`configs/*.yaml` are parsed into the dataclasses below. A YAML file may name a `base:` file
(relative to itself) whose values it overrides, so variants are small diffs, not copies.
Command-line overrides are `dotted.key=value` (the value is parsed as YAML). Unknown keys and
wrong types are one-line `ConfigError`s naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ash_neuro.errors import ConfigError


class OutOfRange(ConfigError):
    """A config value outside its allowed range; `_build` adds the section to `key`."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is out of range; allowed: {allowed}")


def _ranges(obj: Any, **rules: str) -> None:
    """Check fields of `obj` against rules ">= 1", "> 0", "[0.001, 0.5]", "(0, 1)", "(0, 1]";
    list fields check each item. Raises `OutOfRange` naming the first field that breaks one."""
    for name, rule in rules.items():
        value = getattr(obj, name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                for key, entry in item.items():
                    if not _within(entry, rule):
                        raise OutOfRange(f"{name}.{key}", entry, rule)
            elif not _within(item, rule):
                raise OutOfRange(name, value, rule)


def _within(value: float, rule: str) -> bool:
    if rule.startswith((">=", ">")):
        bound = float(rule.lstrip(">= "))
        return value >= bound if rule.startswith(">=") else value > bound
    lo, hi = (float(x) for x in rule[1:-1].split(","))
    above = value >= lo if rule[0] == "[" else value > lo
    below = value <= hi if rule[-1] == "]" else value < hi
    return above and below and value == value  # NaN is in no range


@dataclass
class WorldConfig:
    """The procedural vision-language world (the embedded default data set)."""

    path: str = "data/world.h5"
    seed: int = 0
    image_size: int = 64
    n_train: int = 10000
    n_val: int = 1000
    n_test: int = 1000
    n_compositional: int = 1000
    min_objects: int = 1
    max_objects: int = 6
    captions_per_image: int = 5
    questions_per_image: int = 6
    hypotheses_per_image: int = 3
    refexps_per_image: int = 2
    nlvr_per_pair: int = 2
    vocab_size: int = 600
    workers: int = 2

    def __post_init__(self) -> None:
        _ranges(
            self,
            image_size=">= 8",
            n_train=">= 1",
            n_val=">= 1",
            n_test=">= 1",
            n_compositional=">= 0",
            captions_per_image=">= 1",
            questions_per_image=">= 1",
            hypotheses_per_image=">= 1",
            refexps_per_image=">= 1",
            nlvr_per_pair=">= 1",
            vocab_size=">= 16",
            workers=">= 1",
        )


@dataclass
class VisualConfig:
    """Visual concrete encoder (ANN): `kind` from `registry.VISUAL_ENCODERS` ("vit": patches
    to continuous tokens; "panoptic_instances": the same patches pooled into one token per
    panoptic instance, GSHN). The last four keys are the instance encoder's: `max_instances`
    tokens per image (K), instances from the data's panoptic maps with a k-means fallback for
    images without them (`segments: panoptic`) or always from k-means (`kmeans`), and the
    k-means iterations and weight of a patch's position against its features.

    `pretrained`: a pretrained backbone in place of the scratch ViT ("" none): a Hugging Face
    vision model (ViT, DeiT, ...) by id (found in the local cache only) or folder, or
    "efficientnet-lite0" (the offline-shipped EfficientNet-Lite0); `kind` then becomes
    "pretrained" and `dim` the backbone's token width (`models.backbones.resolve_backbones`)."""

    kind: str = "vit"
    patch_size: int = 8
    dim: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    max_instances: int = 8
    segments: Literal["panoptic", "kmeans"] = "panoptic"
    kmeans_iters: int = 8
    kmeans_spatial: float = 1.0
    pretrained: str = ""

    def __post_init__(self) -> None:
        _ranges(self, patch_size=">= 1", dim=">= 1", depth=">= 1", heads=">= 1", mlp_ratio="> 0")


@dataclass
class SpikingConfig:
    """Semantic abstract encoder: `kind` from `registry.SPIKING_ENCODERS` ("lif_stack": Norse
    LIF layers over the visual tokens as currents for T steps; "none": no spiking encoder, the
    ANN-only network); `encoding` from `registry.SPIKE_CODINGS`."""

    kind: str = "lif_stack"
    time_steps: int = 4
    hidden_dims: list[int] = field(default_factory=lambda: [256])
    out_dim: int = 128
    encoding: str = "current"
    tau_mem_inv: float = 100.0
    v_th: float = 1.0
    dt: float = 1e-3
    surrogate_alpha: float = 100.0
    input_gain: float = 10.0

    def __post_init__(self) -> None:
        _ranges(
            self,
            time_steps=">= 1",
            hidden_dims=">= 1",
            out_dim=">= 1",
            tau_mem_inv="> 0",
            v_th="> 0",
            dt="> 0",
            surrogate_alpha="> 0",
            input_gain="> 0",
        )


@dataclass
class TextConfig:
    """Text encoder: `kind` from `registry.TEXT_ENCODERS` ("bert": a BERT-style `transformers`
    model built from config, no download). `pretrained`: a BERT-family encoder to start from
    instead ("" none), by Hugging Face id (found in the local cache only) or folder, or
    "minilm" (the packaged all-MiniLM-L6-v2); its tokenizer replaces the world's and `dim`,
    `depth` and `heads` become its own (`models.backbones.resolve_backbones`)."""

    kind: str = "bert"
    dim: int = 128
    depth: int = 2
    heads: int = 4
    max_len: int = 32
    pretrained: str = ""

    def __post_init__(self) -> None:
        # [CLS] and [SEP] take two positions of max_len
        _ranges(self, dim=">= 1", depth=">= 1", heads=">= 1", max_len=">= 3")


@dataclass
class GraphConfig:
    """Graph encoder over the visual tokens, beside the spiking encoder: `kind` from
    `registry.GRAPH_ENCODERS` ("none"; "gat": GSHN's graph attention over instance tokens,
    `depth` layers of `heads` heads)."""

    kind: str = "none"
    depth: int = 1
    heads: int = 4


@dataclass
class AdapterConfig:
    """Adapter re-joining spikes and ANN tokens: `kind` from `registry.ADAPTERS` ("concat";
    "ratio": GSHN's V' = r * E_SNN + F_GAT, r learned from `ratio_init`)."""

    kind: str = "concat"
    ratio_init: float = 1.0


@dataclass
class FusionConfig:
    """Fusion encoder: `kind` from `registry.FUSION_ENCODERS` ("cross_attention": text
    self-attention plus cross-attention to the visual tokens; "albef": ALBEF's split, the text
    encoder's upper `depth` layers, each given a cross-attention, become the fusion encoder and
    its lower layers stay text-only; `heads` are then the text encoder's; "unified": CMAL's
    single-stream encoder over text and visual tokens). The last two keys are the unified
    encoder's: the width of its two hypersphere spaces (text tokens, visual objects) and the
    entity classes of its associative mapping classification layer (the anchor vocabulary of
    the data, 15 for the world's shapes and colours; 0: no AMC layer)."""

    kind: str = "cross_attention"
    depth: int = 2
    heads: int = 4
    sphere_dim: int = 128
    amc_entities: int = 0

    def __post_init__(self) -> None:
        _ranges(self, depth=">= 1", heads=">= 1", sphere_dim=">= 1", amc_entities=">= 0")


@dataclass
class ConceptConfig:
    """Visual concepts (ViCHA): image-level keywords embedded with the text encoder's word
    embeddings and appended to the joined visual tokens after the spiking encoder (so the
    exported encoder's contract does not change). `kind` from `registry.VISUAL_CONCEPTS`
    ("none"; "tagged": a tagger on the ANN tokens scores every word of `vocabulary` and the
    image's `count` best words become tokens, each weighted by its probability; see
    `models/visual_concepts.py`). `source`: what the tagger learns to predict at pre-training,
    "scene" (the procedural world's scene ground truth: every object's colour, shape, size and
    texture) or "captions" (words mined from the training captions: the offline option for any
    data set with captions). `vocabulary`: the concept words; empty, `ash_neuro.train` fills it
    from the source (every scene word, or the `vocabulary_size` words of the training captions
    found in the most images, at least `min_images` of them and at most a `max_share` of them,
    function words left out). `max_pieces`: WordPieces per concept word."""

    kind: str = "none"
    source: Literal["scene", "captions"] = "scene"
    count: int = 8
    vocabulary: list[str] = field(default_factory=list)
    vocabulary_size: int = 48
    min_images: int = 5
    max_share: float = 0.5
    max_pieces: int = 4

    def __post_init__(self) -> None:
        _ranges(
            self,
            count=">= 1",
            vocabulary_size=">= 1",
            min_images=">= 1",
            max_share="(0, 1]",
            max_pieces=">= 1",
        )


@dataclass
class AlignmentConfig:
    """Hierarchical cross-modal alignment (ViCHA's H-ITC): `kind` from
    `registry.ALIGNMENT_HEADS` ("none"; "hierarchical": for each i, the visual encoder's hidden
    state `visual_layers[i]` and the text encoder's `text_layers[i]` are projected and aligned
    contrastively, the `hitc` loss, weighted per pair by `loss.hitc_layer_weights`). Indices
    count into the encoders' `hidden_states` (0: the embedded input; negative: from the last
    block). Default: the paper's pairing scaled to two-layer encoders
    (`models/hierarchical_alignment.py`)."""

    kind: str = "none"
    visual_layers: list[int] = field(default_factory=lambda: [-2])
    text_layers: list[int] = field(default_factory=lambda: [-2])


@dataclass
class MIMConfig:
    """Masked image modelling (ViCHA, MAE-style): `kind` from `registry.IMAGE_DECODERS`
    ("none"; "mae": the visual encoder reads the visible patches only and a decoder of
    `decoder_depth` transformer blocks at the visual width predicts every patch's pixels; the
    `mim` loss, its mask ratio `loss.mim_mask_ratio`)."""

    kind: str = "none"
    decoder_depth: int = 1

    def __post_init__(self) -> None:
        _ranges(self, decoder_depth=">= 1")


@dataclass
class ModelConfig:
    embed_dim: int = 64
    visual: VisualConfig = field(default_factory=VisualConfig)
    spiking: SpikingConfig = field(default_factory=SpikingConfig)
    text: TextConfig = field(default_factory=TextConfig)
    graph: GraphConfig = field(default_factory=GraphConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    concepts: ConceptConfig = field(default_factory=ConceptConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    mim: MIMConfig = field(default_factory=MIMConfig)

    def __post_init__(self) -> None:
        _ranges(self, embed_dim=">= 1")


def default_loss_weights() -> dict[str, float]:
    return {
        "itc": 1.0,
        "itm": 1.0,
        "mlm": 1.0,
        "spike_contrastive": 0.5,
        "stua": 0.5,
        "spike_rate": 0.1,
    }


@dataclass
class LossConfig:
    """Pre-training losses: `weights` maps a loss of `registry.LOSSES` to its weight (0 switches
    it off; a file's or an override's entries are merged over these defaults, in this order,
    which is the order the losses are computed in); then the losses' hyper-parameters."""

    weights: dict[str, float] = field(default_factory=default_loss_weights)
    temperature: float = 0.07
    mask_prob: float = 0.15
    hard_negative_weight: float = 2.0
    hard_negatives: int = 4
    target_rate: float = 0.1
    # the per-neuron regulariser's band (losses/neuron_rate.py): silent below, saturated above
    neuron_rate_low: float = 0.01
    neuron_rate_high: float = 0.5
    # CMAL's associative learning (`losses/amc.py`): where anchor points come from (a kind of
    # `registry.ANCHOR_SOURCES`), how the prompt fills them (`registry.ASSOCIATIVE_PROMPTS`),
    # the share of anchors masked and filled per caption, and the share of filled anchors
    # given a feature that does not belong (AMC's negatives)
    anchors: str = "tags"
    prompt: str = "swap"
    anchor_mask_prob: float = 0.5
    amc_negative_prob: float = 0.5
    # H-ITC: the weight of each aligned layer pair (model.alignment), ViCHA's [1, ...]
    hitc_layer_weights: list[float] = field(default_factory=lambda: [1.0])
    # MIM: the share of patches masked (MAE's and ViCHA's 0.75), and whether each patch's target
    # pixels are normalised by their own mean and variance (MAE's norm_pix_loss, ViCHA's choice)
    mim_mask_ratio: float = 0.75
    mim_norm_pix: bool = True

    def __post_init__(self) -> None:
        _ranges(
            self,
            weights=">= 0",
            temperature="[0.001, 0.5]",  # ALBEF's clamp of the learnable temperature
            mask_prob="(0, 1]",
            hard_negative_weight="> 0",
            hard_negatives=">= 0",
            target_rate="(0, 1)",
            neuron_rate_low="(0, 1)",
            neuron_rate_high="(0, 1)",
            anchor_mask_prob="(0, 1]",
            amc_negative_prob="[0, 1)",
            hitc_layer_weights=">= 0",
            mim_mask_ratio="(0, 1)",
        )
        if self.neuron_rate_low >= self.neuron_rate_high:
            raise ConfigError(
                f"loss.neuron_rate_low ({self.neuron_rate_low}) must be below "
                f"loss.neuron_rate_high ({self.neuron_rate_high})"
            )


@dataclass
class TrainConfig:
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    epochs: int = 1
    max_steps: int = 0
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.02
    warmup_steps: int = 50
    grad_clip: float = 1.0
    num_workers: int = 0
    log_every: int = 10
    ckpt_every: int = 100
    eval_limit: int = 1000
    threads: int = 0
    # a non-finite gradient from a finite loss: stop the run (the last checkpoint is good), or
    # skip that step's update and count it (`grad/skipped_steps` in the log)
    nonfinite_grad: Literal["stop", "skip"] = "stop"
    # parts whose weights stay as loaded: "text", "visual" (the whole encoder), or "text:N",
    # "visual:N" (its embeddings and lower N layers); `models.backbones.freeze`
    freeze: list[str] = field(default_factory=list)
    # learning-rate multiplier of the pretrained backbones (`model.*.pretrained`): lower than
    # the new parts' by default, as is usual when fine-tuning pretrained encoders
    pretrained_lr_scale: float = 0.1
    # the share of the training split's images a run trains on: the first ceil(f * N) by index,
    # the same images for every method and seed (data-efficiency comparisons); validation and
    # evaluation read their whole splits
    image_fraction: float = 1.0

    def __post_init__(self) -> None:
        for part in self.freeze:
            name, _, layers = part.partition(":")
            if name not in ("text", "visual") or (layers and not layers.isdigit()):
                raise ConfigError(f"train.freeze: {part!r} is not text, visual, text:N or visual:N")
        _ranges(
            self,
            epochs=">= 1",
            max_steps=">= 0",
            batch_size=">= 1",
            lr=">= 0",  # 0: a run that changes nothing (a check of the loop)
            weight_decay=">= 0",
            warmup_steps=">= 0",
            grad_clip=">= 0",
            num_workers=">= 0",
            log_every=">= 1",
            ckpt_every=">= 1",
            eval_limit=">= 0",
            threads=">= 0",
            pretrained_lr_scale=">= 0",
            image_fraction="(0, 1]",
        )


@dataclass
class FinetuneConfig:
    """Downstream fine-tuning (`python -m ash_neuro.finetune`): the task whose head sits on the
    backbone, and how that task is trained and evaluated."""

    task: str = "vqa"  # a task of `registry.TASKS`
    # the head starts from scratch while the backbone is pre-trained: a larger step for it
    head_lr_scale: float = 10.0
    # retrieval: re-rank each query's top-k ITC candidates by the ITM score (0: ITC only)
    itm_rerank_k: int = 0
    # a tokenizer file fitted to the fine-tuning data (`python -m ash_neuro.data.tokenizer`) in
    # place of --init's; the scratch BERT's embeddings move to its vocabulary ("" keep --init's)
    tokenizer: str = ""

    def __post_init__(self) -> None:
        _ranges(self, head_lr_scale="> 0", itm_rerank_k=">= 0")


@dataclass
class DataConfig:
    """Where fine-tuning and evaluation read their examples: the procedural world (default) or
    a real data set in its own format (`ash_neuro.data.readers`; options described there, ""
    or 0 meaning the format's default). The tokenizer stays the checkpoint's (the world's or a
    pretrained text backbone's), or `finetune.tokenizer`'s."""

    kind: Literal[
        "world",
        "coco",
        "flickr30k",
        "vqa_v2",
        "nlvr2",
        "snli_ve",
        "refcoco",
        "refcoco+",
        "refcocog",
    ] = "world"
    root: str = ""  # "" with kind world: world.path
    transform: Literal["resize", "letterbox"] = "resize"
    on_error: Literal["skip", "stop"] = "skip"
    check_images: bool = True
    annotations: str = ""
    images: str = ""
    questions: str = ""
    answers: str = ""
    top_k: int = 0
    instances: str = ""


@dataclass
class Config:
    world: WorldConfig = field(default_factory=WorldConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    data: DataConfig = field(default_factory=DataConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; return it converted (int -> float only)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_tp, value_tp = typing.get_args(tp)
        return {
            _coerce(k, key_tp, f"{key} key"): _coerce(v, value_tp, f"{key}.{k}")
            for k, v in value.items()
        }
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)[:1]
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} does not match {_type_name(tp)}")
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, got {value!r}")
        return None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # PyYAML (YAML 1.1) reads "1e-3" as a string: accept what float() accepts
        try:
            return float(value)
        except ValueError:
            pass
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp in (int, float, str) and (not isinstance(value, tp) or isinstance(value, bool)):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


# Keys of earlier versions, with what replaced them.
RETIRED_KEYS = {
    "model.hybrid": "use model.spiking.kind=none for the ANN-only network (lif_stack: hybrid)",
    **{
        f"loss.{name}": f"loss weights live under loss.weights (loss.weights.{name}=...)"
        for name in default_loss_weights()
    },
}


def _build(cls: type, data: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            if full in RETIRED_KEYS:
                raise ConfigError(f"config key '{full}' is retired: {RETIRED_KEYS[full]}")
            raise ConfigError(
                f"unknown config key '{full}'; valid keys here: {', '.join(sorted(fields))}"
            )
        kwargs[key] = _coerce(value, hints[key], full)
        if typing.get_origin(hints[key]) is dict and isinstance(kwargs[key], dict):
            # a mapping is merged over its defaults (a loss weight override keeps the others)
            kwargs[key] = {**fields[key].default_factory(), **kwargs[key]}
    try:
        return cls(**kwargs)
    except OutOfRange as exc:
        key = f"{prefix}.{exc.key}" if prefix else exc.key
        raise ConfigError(f"{key}={exc.value!r} is out of range; allowed: {exc.allowed}") from None


def _deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass an existing file to --config")
    if path.resolve() in seen:
        raise ConfigError(f"config {path} includes itself through 'base:'")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    base = data.pop("base", None)
    if base is not None:
        data = _deep_merge(_read_yaml(path.parent / base, (*seen, path.resolve())), data)
    return data


def parse_overrides(overrides: list[str]) -> dict:
    """Turn ["train.lr=1e-3", "loss.weights.mlm=0"] into a nested dict."""
    nested: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override '{item}' is not key=value (e.g. train.lr=1e-3)")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (following `base:`), apply overrides, validate into a `Config`."""
    data = _read_yaml(Path(path)) if path is not None else {}
    data = _deep_merge(data, parse_overrides(overrides or []))
    return config_from_dict(data)


def override_config(cfg: Config, overrides: list[str]) -> Config:
    """`cfg` with `dotted.key=value` overrides applied and validated (e.g. a checkpoint's)."""
    return config_from_dict(_deep_merge(config_to_dict(cfg), parse_overrides(overrides)))


def config_from_dict(data: dict) -> Config:
    cfg = _build(Config, data, "")
    _check_consistency(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def _check_consistency(cfg: Config) -> None:
    v = cfg.model.visual
    if cfg.world.image_size % v.patch_size:
        raise ConfigError(
            f"model.visual.patch_size={v.patch_size} must divide world.image_size="
            f"{cfg.world.image_size}"
        )
    for key, dim, heads in (
        ("model.visual", v.dim, v.heads),
        ("model.graph", v.dim, cfg.model.graph.heads),
        ("model.text", cfg.model.text.dim, cfg.model.text.heads),
        ("model.fusion", cfg.model.text.dim, cfg.model.fusion.heads),
    ):
        if dim % heads:
            raise ConfigError(f"{key}.heads={heads} must divide the width {dim}")
    a = cfg.model.alignment
    if a.kind != "none":
        pairs = len(a.visual_layers)
        if not pairs or len(a.text_layers) != pairs:
            raise ConfigError(
                f"model.alignment pairs visual_layers {a.visual_layers} with text_layers "
                f"{a.text_layers}: give one text layer per visual layer (at least one)"
            )
        if len(cfg.loss.hitc_layer_weights) != pairs:
            raise ConfigError(
                f"loss.hitc_layer_weights={cfg.loss.hitc_layer_weights} needs one weight per "
                f"aligned layer pair ({pairs}, model.alignment)"
            )
    if not 1 <= cfg.world.min_objects <= cfg.world.max_objects <= 6:
        raise ConfigError("world.min_objects/max_objects must satisfy 1 <= min <= max <= 6")
