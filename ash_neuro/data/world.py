"""One chunk of the world: scenes, pixels and every annotation, as columns ready to store.

Images come in consecutive pairs (2k, 2k+1) inside a split: image 2k+1 is, with probability
`MINIMAL_PAIR_PROBABILITY`, a minimal edit of image 2k (one object changed, added or removed),
and each pair gets `nlvr_per_pair` statements. Every random draw comes from a generator seeded
by (seed, split, image index, stream), so a chunk's content does not depend on which process
makes it or in which order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import numpy as np

from ash_neuro.config import WorldConfig
from ash_neuro.data.annotations.captions import CAPTION_TEMPLATES, make_captions
from ash_neuro.data.annotations.entailment import VE_LABELS, make_hypotheses
from ash_neuro.data.annotations.questions import ANSWERS, VQA_FAMILIES, make_questions
from ash_neuro.data.annotations.referring import REFEXP_FAMILIES, make_referring_expressions
from ash_neuro.data.annotations.statements import make_statements
from ash_neuro.data.programs import GraphObject, SceneGraph
from ash_neuro.data.render import RenderedScene, render
from ash_neuro.data.scene import (
    COLOURS,
    SHAPES,
    SIZES,
    SPLITS,
    TEXTURES,
    Scene,
    minimal_edit,
    sample_scene,
)

MINIMAL_PAIR_PROBABILITY = 0.5
SCENE_STREAM, PAIR_STREAM = 0, 1


def generator(seed: int, split: str, index: int, stream: int = SCENE_STREAM) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index, stream])


def _language_rng(rng: np.random.Generator) -> random.Random:
    # Python's Random is several times faster than numpy's for scalar choices, and there are
    # hundreds of them per image; seeding it from the image's generator keeps determinism.
    return random.Random(int(rng.integers(2**63)))


def scene_graph(scene: Scene, rendered: RenderedScene, image_size: int) -> SceneGraph:
    return SceneGraph(
        tuple(
            GraphObject(
                SHAPES[o.shape],
                COLOURS[o.colour],
                SIZES[o.size],
                TEXTURES[o.texture],
                tuple(int(v) for v in box),
            )
            for o, box in zip(scene.objects, rendered.boxes)
        ),
        image_size,
    )


@dataclass
class Chunk:
    """Images [start, stop) of a split; tables hold columns named as in `world_file`."""

    split: str
    start: int
    images: np.ndarray
    instance_maps: np.ndarray
    class_maps: np.ndarray
    tables: dict[str, dict[str, list]] = field(default_factory=dict)

    def column(self, table: str, name: str) -> list:
        return self.tables.setdefault(table, {}).setdefault(name, [])

    def add_row(self, table: str, **values) -> None:
        for name, value in values.items():
            self.column(table, name).append(value)


def _annotate(chunk: Chunk, cfg: WorldConfig, index: int, graph: SceneGraph, rng) -> None:
    lang = _language_rng(rng)
    for k, o in enumerate(graph.objects):
        chunk.add_row(
            "objects",
            image=index,
            index=k,
            shape=SHAPES.index(o.shape),
            colour=COLOURS.index(o.colour),
            size=SIZES.index(o.size),
            texture=TEXTURES.index(o.texture),
            box=o.box,
        )
    for c in make_captions(lang, graph, cfg.captions_per_image):
        chunk.add_row(
            "captions",
            image=index,
            text=c.text,
            template=CAPTION_TEMPLATES.index(c.template),
            program=json.dumps(c.facts),
        )
    for q in make_questions(lang, graph, cfg.questions_per_image):
        chunk.add_row(
            "vqa",
            image=index,
            question=q.text,
            answer=ANSWERS.index(q.answer),
            family=VQA_FAMILIES.index(q.family),
            program=json.dumps(q.program),
        )
    for h in make_hypotheses(lang, graph, cfg.hypotheses_per_image):
        chunk.add_row(
            "ve",
            image=index,
            hypothesis=h.text,
            label=VE_LABELS.index(h.label),
            program=json.dumps(h.program),
        )
    for r in make_referring_expressions(lang, graph, cfg.refexps_per_image):
        chunk.add_row(
            "refexp",
            image=index,
            text=r.text,
            object=r.target,
            box=graph.objects[r.target].box,
            family=REFEXP_FAMILIES.index(r.family),
            program=json.dumps(r.program),
        )


def make_chunk(cfg: WorldConfig, split: str, start: int, stop: int) -> Chunk:
    """Generate images [start, stop) of `split`; `start` must be even (pairs stay together)."""
    if start % 2:
        raise ValueError("chunks start at an even index so that NLVR pairs stay together")
    size, n = cfg.image_size, stop - start
    chunk = Chunk(
        split,
        start,
        np.empty((n, size, size, 3), np.uint8),
        np.empty((n, size, size), np.uint8),
        np.empty((n, size, size), np.uint8),
    )
    for first in range(start, stop, 2):
        rng = generator(cfg.seed, split, first)
        scenes = [sample_scene(rng, cfg, split)]
        rngs = [rng]
        minimal = False
        if first + 1 < stop:
            rng_b = generator(cfg.seed, split, first + 1)
            edited = None
            if rng_b.random() < MINIMAL_PAIR_PROBABILITY:
                edited = minimal_edit(rng_b, scenes[0], cfg, split)
            minimal = edited is not None
            scenes.append(edited if minimal else sample_scene(rng_b, cfg, split))
            rngs.append(rng_b)
        graphs = []
        for offset, (scene, image_rng) in enumerate(zip(scenes, rngs)):
            index = first + offset
            rendered = render(scene, size, image_rng)
            chunk.images[index - start] = rendered.image
            chunk.instance_maps[index - start] = rendered.instance_map
            chunk.class_maps[index - start] = rendered.class_map
            graphs.append(scene_graph(scene, rendered, size))
            _annotate(chunk, cfg, index, graphs[-1], image_rng)
        if len(graphs) == 2:
            pair_rng = generator(cfg.seed, split, first, PAIR_STREAM)
            # which image is shown on the left is random, so "left" carries no edit direction
            order = [0, 1] if pair_rng.random() < 0.5 else [1, 0]
            left, right = graphs[order[0]], graphs[order[1]]
            for st in make_statements(_language_rng(pair_rng), left, right, cfg.nlvr_per_pair):
                chunk.add_row(
                    "nlvr",
                    image_a=first + order[0],
                    image_b=first + order[1],
                    text=st.text,
                    label=int(st.label),
                    minimal_pair=int(minimal),
                    program=json.dumps(st.program),
                )
    return chunk
