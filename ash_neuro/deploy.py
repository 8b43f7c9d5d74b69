"""`python -m ash_neuro.deploy ckpt.pt encoder.nir --task retrieval`: the hybrid network with
its spiking encoder on Lava's Loihi 2 simulator, against the same network in PyTorch.

    images ─► visual concrete encoder (PyTorch) ─► currents (the export contract's encoding)
        ├─► encoder.nir on Lava (.venv-lava, through hardware/runner.py: HDF5 in, HDF5 out)
        └─► the semantic abstract encoder in Norse (identical currents)
    each side's spikes ─► adapter, embeddings, fusion and heads (PyTorch) ─► the task's metrics

Reports, per Lava mode (floating_pt, fixed_pt): the task metric with Lava's spikes beside the
metric with Norse's, per-layer spike agreement (fraction of equal (step, row, neuron) entries),
firing rates, energy and latency estimates (`ash_neuro.energy`) and the simulator's own wall
time; written by `ash_neuro.deploy_report` as JSON, Markdown and PNG plots.

Latency: Lava delivers each Dense hop one step late; hardware/simulate.py removes that
pipeline latency (it returns spikes aligned with their input step) and reports it per layer,
and this report states it beside the results.

Every task runs (`ash_neuro.tasks`: retrieval on any checkpoint, the others on one fine-tuned
for them): the first `--limit` images of the split go through the encoder on each side, and the
task's own evaluation reads them back through its encode hook, so the metrics beside each other
are computed by the same code as `python -m ash_neuro.evaluate`, over the examples whose images
are all among those `limit`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ash_neuro.data.datasets import images_to_float, instance_maps
from ash_neuro.data.sources import configured_source, locate_data
from ash_neuro.energy import (
    chip_fit,
    energy_per_image,
    layer_counts,
    load_profile,
    step_time_ns,
)
from ash_neuro.errors import AshError, cli_entry
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.factory import LoadedModel, load_model, reads_instance_maps
from ash_neuro.models.outputs import (
    Encode,
    SpikeTrains,
    VisualFeatures,
    VisualInput,
    VisualOutput,
)
from ash_neuro.nir_export.contract import (
    EncoderContract,
    NIRExportError,
    read_contract,
    sidecar_path,
)
from ash_neuro.runtime import resolve_device
from hardware.runner import MODES, lava_python, overflow_lines, simulate_on_lava, write_inputs

BATCH = 64  # images per PyTorch forward pass
CHIP = "loihi2"  # the energy profile the report prices the run on (ash_neuro/energy_profiles)
CHUNK = 16  # images per Lava run (one build each): bounds memory, drives the progress bar
CONTRACT_FIELDS = (
    "time_steps",
    "dt",
    "in_dim",
    "out_dim",
    "tokens_per_image",
    "layer_sizes",
    "input_encoding",
    "input_gain",
)


class DeployError(AshError):
    """The checkpoint and the NIR graph cannot be deployed together."""


# --- loading and checking --------------------------------------------------------------------


def load_hybrid(ckpt_path: Path, task: str) -> LoadedModel:
    """The checkpoint's network with the head of `task`; it must have a spiking encoder."""
    loaded = load_model(ckpt_path, task)
    if not loaded.backbone.hybrid:
        raise DeployError(
            f"{ckpt_path} has no spiking encoder (model.spiking.kind=none): nothing to deploy"
        )
    return loaded


def encoder_contract(nir_path: Path) -> EncoderContract:
    """The export contract of `nir_path`: its sidecar, else the graph's metadata."""
    if not nir_path.is_file():
        raise DeployError(
            f"NIR graph {nir_path} not found; export it with `python export/to_nir.py ckpt.pt`"
        )
    sidecar = sidecar_path(nir_path)
    try:
        if sidecar.is_file():
            return EncoderContract.from_json(sidecar.read_text())
        return read_contract(nir_path)
    except NIRExportError as exc:
        raise DeployError(f"{nir_path}: {exc}") from None
    except (OSError, KeyError, ValueError) as exc:
        raise DeployError(f"{nir_path} is not a readable NIR graph ({exc})") from None


def check_belongs(model: ASHNet, contract: EncoderContract, nir_path: Path) -> None:
    """The graph is this checkpoint's encoder: same contract and the same weights."""
    encoder = model.semantic_abstract_encoder
    widths = tuple(m.out_features for m in encoder.network if isinstance(m, torch.nn.Linear))
    own = {
        "time_steps": encoder.time_steps,
        "dt": encoder.dt,
        "in_dim": encoder.in_dim,
        "out_dim": encoder.out_dim,
        "tokens_per_image": model.visual_concrete_encoder.n_tokens,
        "layer_sizes": widths,
        "input_encoding": encoder.encoding,
        "input_gain": float(encoder.input_gain),
    }
    differ = [
        f"{k} {getattr(contract, k)!r} vs {own[k]!r}"
        for k in CONTRACT_FIELDS
        if getattr(contract, k) != own[k]
    ]
    if differ:
        raise DeployError(
            f"{nir_path} was not exported from this checkpoint (graph vs checkpoint: "
            f"{'; '.join(differ)}); export it with `python export/to_nir.py ckpt.pt`"
        )
    graph = nir.read(nir_path)
    affine = [n for n in graph.nodes.values() if isinstance(n, nir.Affine | nir.Linear)]
    for layer in (m for m in encoder.network if isinstance(m, torch.nn.Linear)):
        weight = layer.weight.detach().cpu().numpy()
        if not any(
            n.weight.shape == weight.shape and np.allclose(n.weight, weight, atol=1e-6)
            for n in affine
        ):
            raise DeployError(
                f"{nir_path} was not exported from this checkpoint: no graph weight matches its "
                f"{weight.shape[1]}->{weight.shape[0]} layer; re-export with export/to_nir.py"
            )


# --- running ---------------------------------------------------------------------------------


@dataclass
class EncoderRun:
    """One run of the spiking encoder over every row of the task's images.

    layers  {`lif1`: `(T, rows, width)` spikes, ...} in layer order (the last is the output)
    """

    layers: dict[str, np.ndarray]
    seconds: float
    simulator: dict[str, float] | None = None  # Lava only: build_s, run_s, wall_s, steps
    latency: dict[str, int] | None = None  # Lava only: pipeline steps removed per layer
    quantisation: str | None = None


def run_norse(model: ASHNet, currents: Tensor) -> EncoderRun:
    """The semantic abstract encoder in Norse on currents `(T, rows, in_dim)`."""
    start = time.perf_counter()
    with torch.no_grad():
        _, layers = model.semantic_abstract_encoder.run(currents)
    seconds = time.perf_counter() - start
    return EncoderRun({k: v.cpu().numpy() for k, v in layers.items()}, seconds)


def run_lava(
    nir_path: Path,
    currents: Tensor,
    rows_per_image: int,
    names: list[str],
    mode: str,
    chunk: int = CHUNK,
) -> EncoderRun:
    """The graph on Lava in `mode`, `chunk` images per build, every layer recorded.

    Each token row is one Lava sample of T steps (every sample starts from rest, as the
    contract requires); Lava's node names map onto `names` in pipeline order (latency).
    fixed_pt quantises every chunk on all of `currents`, so that all run on the same integers,
    and sums the current-overflow check over the chunks.
    """
    rows = currents.shape[1]
    stream = currents.permute(1, 0, 2).cpu().numpy()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    timing = {"build_s": 0.0, "run_s": 0.0, "wall_s": 0.0, "steps": 0.0}
    latency, quantisation, overflow = {}, None, {}
    step = chunk * rows_per_image
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ash-deploy-") as tmp:
        calibration = (
            write_inputs(Path(tmp) / "calibration.h5", stream) if mode == "fixed_pt" else None
        )
        for first in tqdm(range(0, rows, step), desc=f"lava {mode}", unit="chunk", leave=False):
            began = time.perf_counter()
            part = stream[first : first + step]
            result = simulate_on_lava(
                nir_path, part, mode, record_spikes=True, quantise_on=calibration
            )
            timing["wall_s"] += time.perf_counter() - began
            nodes = sorted(result.spikes, key=lambda node: result.latency[node])
            if len(nodes) != len(names):
                raise DeployError(
                    f"{nir_path} has {len(nodes)} spiking layers on Lava, not {len(names)}"
                )
            for name, node in zip(names, nodes):
                parts[name].append(result.spikes[node].transpose(1, 0, 2))
                latency[name] = result.latency[node]
            for key, attr in (("build_s", "build_s"), ("run_s", "run_s"), ("steps", "steps_run")):
                timing[key] += float(result.attrs[attr])
            quantisation = result.attrs.get("quantisation", quantisation)
            add_overflow(overflow, result.attrs.get("current_overflow"), names, nodes)
    if quantisation and overflow:
        quantisation = "\n".join([quantisation, *overflow_lines(overflow)])
    layers = {name: np.concatenate(chunks, axis=1) for name, chunks in parts.items()}
    return EncoderRun(layers, time.perf_counter() - start, timing, latency, quantisation)


def add_overflow(total: dict, chunk_json: str | None, names: list[str], nodes: list[str]) -> None:
    """Add one chunk's `current_overflow` (out.h5, JSON by graph node) to `total` (by layer
    name): wrapped and neuron-step counts add up, the peak is the largest."""
    if not chunk_json:
        return
    chunk = json.loads(chunk_json)
    for name, node in zip(names, nodes):
        figures = chunk[node]
        into = total.setdefault(name, {"peak_share": 0.0, "wrapped": 0.0, "neuron_steps": 0.0})
        into["peak_share"] = max(into["peak_share"], figures["peak_share"])
        into["wrapped"] += figures["wrapped"]
        into["neuron_steps"] += figures["neuron_steps"]


def spike_agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Fraction of equal (step, row, neuron) entries per layer, and over all layers (`all`)."""
    result = {name: float(np.mean(a[name] == b[name])) for name in a}
    equal = sum(int(np.count_nonzero(a[n] == b[n])) for n in a)
    result["all"] = equal / sum(a[n].size for n in a)
    return result


def rejoin(model: ASHNet, features: VisualFeatures, output_spikes: np.ndarray) -> Encode:
    """The encode hook of one side: `output_spikes` `(T, rows, out_dim)` of the deployed images
    re-joined to their ANN tokens (adapter, embeddings), looked up by image index."""
    tokens = features.tokens
    images, n = tokens.shape[:2]
    spikes = torch.from_numpy(output_spikes).to(tokens.device)
    spikes = spikes.reshape(spikes.shape[0], images, n, -1)
    with torch.no_grad():
        visual = VisualOutput.concat(
            [
                model.join_visual(
                    features.select(slice(i, i + BATCH)), SpikeTrains(spikes[:, i : i + BATCH])
                )
                for i in range(0, images, BATCH)
            ]
        )

    def encode(inputs: VisualInput) -> VisualOutput:
        if int(inputs.ids.max()) >= images:
            raise DeployError(f"image {int(inputs.ids.max())} was not deployed (only {images})")
        return visual.select(inputs.ids.to(tokens.device))

    return encode


def encoder_currents(
    model: ASHNet,
    images: Tensor,
    device: torch.device,
    seed: int,
    instance_maps: Tensor | None = None,
) -> tuple[VisualFeatures, Tensor]:
    """(ANN features of the images, tokens `(N, n, dim)`; currents `(T, N * n, in_dim)` on the
    CPU); a random coding draws from `seed`, so Lava and Norse see identical currents. The
    panoptic `instance_maps` `(N, H, W)` go with the images to a visual encoder that reads them."""
    with torch.no_grad():
        parts = [
            model.visual_concrete_encoder(
                images[i : i + BATCH].to(device),
                None if instance_maps is None else instance_maps[i : i + BATCH].to(device),
            )
            for i in range(0, len(images), BATCH)
        ]
        features = VisualFeatures.concat(parts)
        generator = torch.Generator().manual_seed(seed)
        currents = model.semantic_abstract_encoder.encode_input(features.tokens.cpu(), generator)
    return features, currents.contiguous()


def energy_report(
    run: EncoderRun,
    currents: Tensor,
    contract: EncoderContract,
    images: int,
    chip: str = CHIP,
    ann: str = "ann_45nm",
) -> dict:
    """Energy and modelled chip latency per image from a run's activity (estimates)."""
    chip_profile, ann_profile = load_profile(chip), load_profile(ann)
    steps = contract.tokens_per_image * contract.time_steps
    names = list(run.layers)
    counts = layer_counts(
        names,
        list(contract.layer_sizes),
        contract.in_dim,
        float(torch.count_nonzero(currents)) / images,
        [float(run.layers[n].sum()) / images for n in names],
        steps,
    )
    layers = energy_per_image(counts, contract.tokens_per_image, chip_profile, ann_profile)
    step_ns = step_time_ns(counts, chip_profile)
    depth = max(run.latency.values()) if run.latency else len(names)
    return {
        "estimate": "modelled from published per-operation figures, not measured on a chip",
        "chip": chip_profile.name,
        "per_operation_basis": chip_profile.per_operation_basis,
        "chip_fit": chip_fit(counts, chip_profile),
        "profiles": {
            p.name: {
                "description": p.description,
                "values": p.values,
                "sources": p.sources,
                "capacity": p.capacity,
                "capacity_sources": p.capacity_sources,
            }
            for p in (chip_profile, ann_profile)
        },
        "layers": [
            {
                "name": e.name,
                "synaptic_ops": e.synaptic_ops,
                "neuron_updates": e.neuron_updates,
                "messages": e.messages,
                "synaptic_uj": e.synaptic_pj * 1e-6,
                "neuron_uj": e.neuron_pj * 1e-6,
                "message_uj": e.message_pj * 1e-6,
                "snn_uj": e.snn_pj * 1e-6,
                "snn_ops_on_ann_profile_uj": e.snn_on_ann_pj * 1e-6,
                "ann_macs": e.ann_macs,
                "ann_uj": e.ann_pj * 1e-6,
            }
            for e in layers
        ],
        "snn_uj_per_image": sum(e.snn_pj for e in layers) * 1e-6,
        "snn_ops_on_ann_profile_uj_per_image": sum(e.snn_on_ann_pj for e in layers) * 1e-6,
        "ann_uj_per_image": sum(e.ann_pj for e in layers) * 1e-6,
        "steps_per_image": steps,
        "pipeline_fill_steps": depth,
        "step_time_us": step_ns * 1e-3,
        "chip_latency_ms_per_image": steps * step_ns * 1e-6,
        "biological_time_ms_per_image": steps * contract.dt * 1e3,
    }


def deploy(
    ckpt_path: Path,
    nir_path: Path,
    task: str = "retrieval",
    split: str = "test",
    limit: int = 16,
    modes: tuple[str, ...] = MODES,
    device: str = "auto",
    chunk: int = CHUNK,
    seed: int = 0,
    chip: str = CHIP,
) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """Run the deployment; returns (the report record, every side's spikes of the first image
    `{side: {layer: (T, rows_per_image, width)}}` for the raster plot)."""
    for mode in modes:
        if mode not in MODES:
            raise DeployError(f"unknown mode {mode!r}; use {' or '.join(MODES)}")
    if limit < 1:
        raise DeployError(f"--limit must be at least 1 image, got {limit}")
    load_profile(chip)  # a bad --chip fails before any work
    contract = encoder_contract(nir_path)
    torch_device = resolve_device(device)
    loaded = load_hybrid(ckpt_path, task)
    task_model, model = loaded.model.to(torch_device), loaded.backbone
    check_belongs(model, contract, nir_path)
    lava_python()  # fail before the task's work when the Lava environment is missing
    cfg = locate_data(loaded.cfg, loaded.data, {})
    source = configured_source(cfg, split)
    images = min(limit, len(source))
    pixels = images_to_float(np.stack([source.image(i) for i in range(images)]))
    maps = instance_maps(source, images) if reads_instance_maps(loaded.cfg, source) else None
    features, currents = encoder_currents(model, pixels, torch_device, seed, maps)
    rows = contract.tokens_per_image
    norse = run_norse(model, currents.to(torch_device))
    names = list(norse.layers)
    output = names[-1]

    def evaluate(layers: dict[str, np.ndarray]) -> dict[str, float]:
        encode = rejoin(model, features, layers[output])
        return task_model.task.evaluate(
            task_model, source, split, loaded.tokenizer, torch_device, images, encode
        )

    norse_metrics = evaluate(norse.layers)
    record = {
        "checkpoint": str(ckpt_path),
        "nir": str(nir_path),
        "task": task_model.name,
        "split": split,
        "main_metric": task_model.task.main_metric,
        "n_images": images,
        "n_examples": norse_metrics.pop("n"),
        "rows_per_image": rows,
        "time_steps": contract.time_steps,
        "dt": contract.dt,
        "layer_sizes": dict(zip(names, contract.layer_sizes)),
        "norse": {
            "metrics": norse_metrics,
            "firing_rates": {n: float(s.mean()) for n, s in norse.layers.items()},
            "seconds_per_image": norse.seconds / images,
        },
        "modes": {},
    }
    rasters = {"norse": {n: s[:, :rows] for n, s in norse.layers.items()}}
    for mode in modes:
        lava = run_lava(nir_path, currents, rows, names, mode, chunk)
        sim = lava.simulator
        record["modes"][mode] = {
            "metrics": {k: v for k, v in evaluate(lava.layers).items() if k != "n"},
            "agreement": spike_agreement(lava.layers, norse.layers),
            "firing_rates": {n: float(s.mean()) for n, s in lava.layers.items()},
            "pipeline_latency_steps": lava.latency,
            "latency_handling": (
                "Lava delivers each Dense hop one step late; the harness removed "
                f"{lava.latency} steps per layer, so spikes are compared step for step"
            ),
            "simulator": {
                **sim,
                "label": "Lava CPU simulator wall time, not chip time",
                "ms_per_step": 1000 * sim["run_s"] / sim["steps"],
                "seconds_per_image": sim["wall_s"] / images,
                "step_floor_seconds_per_image": sim["run_s"]
                / sim["steps"]
                * rows
                * contract.time_steps,
            },
            "quantisation": lava.quantisation,
            "energy": energy_report(lava, currents, contract, images, chip),
        }
        rasters[mode] = {n: s[:, :rows] for n, s in lava.layers.items()}
    return record, rasters


@cli_entry
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m ash_neuro.deploy", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "checkpoint",
        type=Path,
        help="ckpt.pt with a spiking encoder, pre-trained or fine-tuned (a task other than "
        "retrieval: fine-tuned for it)",
    )
    parser.add_argument("nir", type=Path, help="its encoder.nir (export/to_nir.py)")
    parser.add_argument(
        "--task", default="retrieval", help="retrieval (default), vqa, nlvr, ve or grounding"
    )
    parser.add_argument("--split", default="test", help="train, val, test or compositional")
    parser.add_argument("--limit", type=int, default=16, help="first N images of the split")
    parser.add_argument("--mode", choices=MODES, help="one Lava mode (default: both)")
    parser.add_argument("--report", type=Path, help="report folder (default: <ckpt dir>/deploy)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--chunk", type=int, default=CHUNK, help="images per Lava build")
    parser.add_argument(
        "--chip",
        default=CHIP,
        help="energy profile: loihi2, loihi (ash_neuro/energy_profiles) or a profile .json",
    )
    args = parser.parse_args(argv)
    from ash_neuro.deploy_report import write_report

    modes = (args.mode,) if args.mode else MODES
    record, rasters = deploy(
        args.checkpoint,
        args.nir,
        args.task,
        args.split,
        args.limit,
        modes,
        args.device,
        args.chunk,
        chip=args.chip,
    )
    folder = args.report or args.checkpoint.parent / "deploy"
    written = write_report(record, rasters, folder)
    print((folder / "report.md").read_text(), end="")
    print("written: " + ", ".join(str(p) for p in written))
    return record


if __name__ == "__main__":
    main()
