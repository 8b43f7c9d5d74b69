"""The encoder contract: what a consumer of `encoder.nir` needs beside the graph itself.

Standard library only (plus `ash_neuro.errors`), so that the Lava side (`hardware/`, its own
environment without torch) reads the same record the exporter writes: the JSON sidecar
`encoder.nir.json`, or the graph metadata under `METADATA_KEY` (`read_contract`, which needs
`nir`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ash_neuro.errors import AshError

CONTRACT_SCHEMA = "ash-neuro/encoder-contract"
# 2: `first_layer` (where the first Affine runs); a version-1 contract, written before that
# choice existed, is read as the first layer on the chip (`EncoderContract.from_dict`)
CONTRACT_VERSION = 2
METADATA_KEY = "ash_neuro_contract"
# How `SemanticAbstractEncoder.encode_input` turns visual tokens into currents, for consumers
# that compute the currents themselves (kept equal to the model's ENCODINGS by a test).
ENCODING_DESCRIPTIONS = {
    "current": "currents[t] = input_gain * features for every step t (direct coding); features "
    "are the visual concrete encoder's tokens (batch, tokens_per_image, in_dim) flattened to "
    "rows = batch * tokens_per_image",
    "poisson": "currents[t] = input_gain * s_t, s_t ~ Bernoulli(sigmoid(features)) drawn "
    "independently per step and element (rate coding); features as for 'current'",
}
ENCODINGS = tuple(ENCODING_DESCRIPTIONS)
# Where the encoder's first Affine runs, and so what the graph's Input takes.
FIRST_LAYER_DESCRIPTIONS = {
    "chip": "the graph holds every layer: its Input takes the currents (time_steps, rows, "
    "in_dim) and its first Affine runs on the neuromorphic chip, graded currents into dense "
    "synapses every step",
    "host": "the first Affine runs on the host, not in the graph: the host computes "
    "W1 @ currents[t] + b1 with the encoder's first Linear layer (the checkpoint's), once per "
    "token for a constant coding, and the graph's Input takes that (time_steps, rows, "
    "layer_sizes[0]), delivered one-to-one to the first LIF population",
}
FIRST_LAYERS = tuple(FIRST_LAYER_DESCRIPTIONS)
# What Norse computes, in NIR's terms; the derivation is in `mapping.lif_box_to_nir`.
SEMANTICS = (
    "NIR LIF by forward Euler with step dt: v += (dt / tau) * ((v_leak - v) + r * I); spike "
    "where v > v_threshold (strict), then v = v_reset, within the same step; Affine y = W x + b; "
    "a spike reaches the next layer in the same step (no delay); every row starts at v = v_leak"
)


class NIRExportError(AshError):
    """The encoder cannot be exported (a layer NIR cannot express, an unwritable path, ...)."""


class ExportVerificationError(NIRExportError):
    """The written graph does not reproduce the encoder; the export is discarded."""


@dataclass(frozen=True)
class EncoderContract:
    """What a consumer of `encoder.nir` needs to drive it, beside the graph itself.

    Tensors cross the seam time-first: input currents `(time_steps, rows, in_dim)` float32,
    one row per (image, token) pair, image-major (row = image * tokens_per_image + token), fed
    to the graph's Input node one step at a time; output spikes `(time_steps, rows, out_dim)`
    in {0, 1} from its Output node. `encoding` says how the currents are made from the visual
    tokens (`input_encoding`, `input_gain`); that stays in PyTorch. Every row starts from
    rest (`v = v_leak`) at step 0. Within a step a spike reaches the next layer in the same step
    (no synaptic delay); a simulator that pipelines layers (Lava's processes do, one step per
    layer) delivers the same spikes `len(layer_sizes) - 1` steps later. `visual_encoder`
    describes the encoder whose tokens the currents are made of (a pretrained backbone's name,
    input size, normalisation and token layout; `in_dim` is its token width), for a consumer
    that computes the currents itself ("" in contracts written before it was recorded).

    `first_layer` ("chip" or "host", `FIRST_LAYER_DESCRIPTIONS`) says where the encoder's first
    Affine runs: in the graph (its Input takes the currents, `in_dim` wide) or on the host (the
    graph starts at the first LIF population and its Input takes the host's `W1 x + b1`,
    `layer_sizes[0]` wide: `graph_in_dim`).
    """

    time_steps: int
    dt: float
    in_dim: int
    out_dim: int
    tokens_per_image: int
    layer_sizes: tuple[int, ...]
    input_encoding: str
    input_gain: float
    encoding: str
    input_node: str = "input"
    output_node: str = "output"
    visual_encoder: str = ""
    first_layer: str = "chip"
    semantics: str = SEMANTICS
    schema: str = CONTRACT_SCHEMA
    version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_sizes", tuple(self.layer_sizes))
        problems = []
        if self.schema != CONTRACT_SCHEMA or self.version != CONTRACT_VERSION:
            problems.append(
                f"schema {self.schema!r} v{self.version}, expected {CONTRACT_SCHEMA!r} "
                f"v{CONTRACT_VERSION}"
            )
        for name in ("time_steps", "in_dim", "out_dim", "tokens_per_image"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if not _is_number(self.dt) or not math.isfinite(self.dt) or self.dt <= 0:
            problems.append(f"dt must be a positive number of seconds, got {self.dt!r}")
        if not _is_number(self.input_gain) or not math.isfinite(self.input_gain):
            problems.append(f"input_gain must be a finite number, got {self.input_gain!r}")
        if not self.layer_sizes or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.layer_sizes
        ):
            problems.append(f"layer_sizes must be positive integers, got {self.layer_sizes!r}")
        elif self.layer_sizes[-1] != self.out_dim:
            problems.append(
                f"the last layer has {self.layer_sizes[-1]} neurons, not {self.out_dim}"
            )
        if self.input_encoding not in ENCODINGS:
            problems.append(f"input_encoding must be one of {', '.join(ENCODINGS)}")
        if self.first_layer not in FIRST_LAYERS:
            problems.append(f"first_layer must be one of {', '.join(FIRST_LAYERS)}")
        for name in ("encoding", "semantics", "input_node", "output_node"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                problems.append(f"{name} must be a non-empty string")
        if not isinstance(self.visual_encoder, str):
            problems.append("visual_encoder must be a string")
        if problems:
            raise NIRExportError("invalid encoder contract: " + "; ".join(problems))

    @property
    def graph_in_dim(self) -> int:
        """Width of the graph's Input: the currents' (`in_dim`), or with the first layer on
        the host, the first Affine's output (`layer_sizes[0]`)."""
        return self.in_dim if self.first_layer == "chip" else self.layer_sizes[0]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layer_sizes"] = list(self.layer_sizes)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderContract:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise NIRExportError(f"invalid encoder contract: unknown keys {', '.join(unknown)}")
        if (
            data.get("version") == 1
            and data.get("schema") == CONTRACT_SCHEMA
            and "first_layer" not in data
        ):
            # written before `first_layer` existed: every graph then held its first Affine
            data = {**data, "version": CONTRACT_VERSION, "first_layer": "chip"}
        try:
            return cls(**data)
        except TypeError as exc:
            raise NIRExportError(f"invalid encoder contract: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> EncoderContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise NIRExportError(f"invalid encoder contract: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise NIRExportError("invalid encoder contract: not a JSON object")
        return cls.from_dict(data)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def sidecar_path(nir_path: str | Path) -> Path:
    """`encoder.nir` -> `encoder.nir.json`."""
    nir_path = Path(nir_path)
    return nir_path.with_name(nir_path.name + ".json")


GRAPH_HASH_KEY = "graph_sha256"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_text(contract: EncoderContract, graph_file: str | Path) -> str:
    """The sidecar of a graph file: the contract and the graph's SHA-256, so that a reader
    notices a sidecar left beside another graph (an export killed between the two renames)."""
    return json.dumps({**contract.to_dict(), GRAPH_HASH_KEY: file_sha256(graph_file)}, indent=2)


def read_sidecar(nir_path: str | Path) -> EncoderContract:
    """The contract of `nir_path` from its sidecar, after checking the sidecar was written for
    this very graph file (when it names one; a hand-written contract may not)."""
    nir_path, sidecar = Path(nir_path), sidecar_path(nir_path)
    try:
        data = json.loads(sidecar.read_text())
    except json.JSONDecodeError as exc:
        raise NIRExportError(f"{sidecar} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise NIRExportError(f"{sidecar} is not a JSON object")
    expected = data.pop(GRAPH_HASH_KEY, None)
    if expected is not None and expected != file_sha256(nir_path):
        raise NIRExportError(
            f"{sidecar} was written for another graph than {nir_path} (an interrupted export?); "
            "export again with `python export/to_nir.py ckpt.pt`"
        )
    return EncoderContract.from_dict(data)


def read_contract(nir_path: str | Path) -> EncoderContract:
    """The contract stored in a graph written by `writer.export_network`."""
    import nir  # here, not at the top: the rest of this module needs only the standard library

    graph = nir.read(nir_path)
    text = graph.metadata.get(METADATA_KEY)
    if not isinstance(text, str):
        raise NIRExportError(f"{nir_path} has no '{METADATA_KEY}' metadata")
    return EncoderContract.from_json(text)
