"""Name -> constructor registries: how a config's `kind:` picks a component.

A component registers itself where it is defined:

    @ADAPTERS.register("concat")
    class ConcatAdapter(nn.Module): ...

and the model factory looks it up by the config's `kind`. A registry knows the modules that
define its built-in components and imports them on the first lookup, so a lookup never depends
on what happened to be imported before, and this module imports nothing heavy. A component
defined outside the package (a user's file, a test) registers the same way and is then chosen
by config like a built-in one. An unknown kind is a one-line `ConfigError` listing the
registered names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ash_neuro.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """`what`: the component family in words; `key`: the config key that names a kind;
    `modules`: the modules whose import registers the built-in kinds."""

    def __init__(self, what: str, key: str, modules: tuple[str, ...]) -> None:
        self.what, self.key, self.modules = what, key, modules
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated class or function as `name`."""

        def add(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def unregister(self, name: str) -> None:
        """Remove `name` (a test's temporary component)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.modules:
                importlib.import_module(module)

    def get(self, name: str) -> T:
        """The entry registered as `name`; an unknown name is a one-line ConfigError."""
        self._load()
        if name not in self._entries:
            known = ", ".join(sorted(self.names()))
            raise ConfigError(f"{self.key}: unknown {self.what} {name!r}; registered: {known}")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# Every pluggable family, with the modules that define its built-in kinds. A new component is
# one more `@<REGISTRY>.register("name")` in its own file (listed here when it ships with
# ash-neuro) and a `kind: name` in a config.
VISUAL_ENCODERS: Registry = Registry(
    "visual encoder",
    "model.visual.kind",
    (
        "ash_neuro.models.visual_concrete_encoder",
        "ash_neuro.models.panoptic_instance_encoder",
        "ash_neuro.models.pretrained_visual",
    ),
)
SPIKING_ENCODERS: Registry = Registry(
    "spiking encoder", "model.spiking.kind", ("ash_neuro.models.semantic_abstract_encoder",)
)
SPIKE_CODINGS: Registry = Registry(
    "spike coding", "model.spiking.encoding", ("ash_neuro.models.spike_coding",)
)
TEXT_ENCODERS: Registry = Registry(
    "text encoder", "model.text.kind", ("ash_neuro.models.text_encoder",)
)
GRAPH_ENCODERS: Registry = Registry(
    "graph encoder", "model.graph.kind", ("ash_neuro.models.instance_graph",)
)
ADAPTERS: Registry = Registry(
    "adapter", "model.adapter.kind", ("ash_neuro.models.adapter", "ash_neuro.models.ratio_adapter")
)
FUSION_ENCODERS: Registry = Registry(
    "fusion encoder",
    "model.fusion.kind",
    (
        "ash_neuro.models.fusion_encoder",
        "ash_neuro.models.albef_fusion",
        "ash_neuro.models.unified_encoder",
    ),
)
# CMAL: where a caption's anchor points come from, and how the associative prompt fills them
ANCHOR_SOURCES: Registry = Registry("anchor source", "loss.anchors", ("ash_neuro.data.anchors",))
ASSOCIATIVE_PROMPTS: Registry = Registry(
    "associative prompt", "loss.prompt", ("ash_neuro.models.associative_prompt",)
)
VISUAL_CONCEPTS: Registry = Registry(
    "visual concept encoder", "model.concepts.kind", ("ash_neuro.models.visual_concepts",)
)
ALIGNMENT_HEADS: Registry = Registry(
    "alignment head", "model.alignment.kind", ("ash_neuro.models.hierarchical_alignment",)
)
IMAGE_DECODERS: Registry = Registry(
    "image decoder", "model.mim.kind", ("ash_neuro.models.masked_image_decoder",)
)
LOSSES: Registry = Registry(
    "loss",
    "loss.weights",
    tuple(
        f"ash_neuro.losses.{name}"
        for name in (
            "itc",
            "itm",
            "mlm",
            "spike_contrastive",
            "stua",
            "stl",
            "spike_rate",
            "neuron_rate",
            "hypersphere",  # visual_sphere, text_sphere
            "amc",
            "hitc",
            "concept_tagging",
            "mim",
        )
    ),
)
TASKS: Registry = Registry(
    "task",
    "finetune.task",
    tuple(
        f"ash_neuro.tasks.{name}" for name in ("retrieval", "vqa", "classification", "grounding")
    ),
)
