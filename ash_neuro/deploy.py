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

A task is a function `(model, cfg, tokenizer, device, split, limit) -> TaskRun` of the task's
`TaskModel` (`ash_neuro.evaluate.load_task_model`: a pre-trained checkpoint, or one fine-tuned
for that task; retrieval runs on any): the images whose encoder runs on Lava and a scorer of
the re-joined visual output; `TASKS` lists them (retrieval, vqa).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Subset
from tqdm import tqdm

from ash_neuro.config import Config
from ash_neuro.data.datasets import Collator, images_to_float, retrieval_split
from ash_neuro.energy import (
    chip_fit,
    energy_per_image,
    layer_counts,
    load_profile,
    step_time_ns,
)
from ash_neuro.errors import AshError, cli_entry
from ash_neuro.evaluate import load_task_model
from ash_neuro.loop import world_path
from ash_neuro.metrics import recall_at_k
from ash_neuro.models.ash_net import ASHNet, VisualOutput
from ash_neuro.models.task_model import TaskModel
from ash_neuro.nir_export.contract import (
    EncoderContract,
    NIRExportError,
    read_contract,
    sidecar_path,
)
from ash_neuro.retrieval import embed_texts
from ash_neuro.runtime import resolve_device
from ash_neuro.tasks import predict, task_dataset, task_metrics, within_limit
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


# --- tasks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRun:
    """What deploying a task needs: its images `(N, 3, H, W)` in [0, 1], a scorer of the
    re-joined visual output of those images, its headline metric and its number of examples."""

    images: Tensor
    score: Callable[[ASHNet, VisualOutput], dict[str, float]]
    main_metric: str
    n_examples: int


def retrieval_task(
    model: TaskModel, cfg: Config, tokenizer, device: torch.device, split: str, limit: int
) -> TaskRun:
    """Image-text retrieval over the first `limit` images of a split and all their captions,
    ranked by ITC similarity (Recall@1/5/10 both ways, `ash_neuro.metrics.recall_at_k`)."""
    data = retrieval_split(world_path(cfg), split, limit=limit)
    text_embed = embed_texts(model.backbone, data.texts, tokenizer, cfg.model.text.max_len, device)

    def score(_model: ASHNet, visual: VisualOutput) -> dict[str, float]:
        similarity = visual.image_embed.float().cpu() @ text_embed.T
        return recall_at_k(similarity, data.txt2img, data.img2txt)

    return TaskRun(data.images, score, "r_mean", len(data.texts))


def vqa_task(
    model: TaskModel, cfg: Config, tokenizer, device: torch.device, split: str, limit: int
) -> TaskRun:
    """VQA over the questions on the first `limit` images of a split: the fine-tuned head over
    the question fused with the re-joined visual tokens (`ash_neuro.tasks`' soft accuracy)."""
    dataset = task_dataset(cfg, "vqa", split, tokenizer)
    questions = Subset(dataset, within_limit(dataset.records, limit))
    images = min(limit, len(dataset.source))
    pixels = images_to_float(np.stack([dataset.source.image(i) for i in range(images)]))
    collate = Collator(tokenizer, cfg.model.text.max_len)

    def score(_model: ASHNet, visual: VisualOutput) -> dict[str, float]:
        def encode(batch: dict) -> VisualOutput:
            return select_visual(visual, batch["image_id"].to(visual.tokens.device))

        return task_metrics("vqa", predict(model, questions, collate, device, encode))

    return TaskRun(pixels, score, "vqa_acc", len(questions))


TASKS: dict[str, Callable[..., TaskRun]] = {"retrieval": retrieval_task, "vqa": vqa_task}


# --- loading and checking --------------------------------------------------------------------


def load_model(
    ckpt_path: Path, task: str, device: torch.device
) -> tuple[TaskModel, Config, object]:
    """(the hybrid `TaskModel` of `task` with the checkpoint's weights, in eval mode, config,
    tokenizer)."""
    model, cfg, tokenizer = load_task_model(ckpt_path, task)
    if not model.backbone.hybrid:
        raise DeployError(
            f"{ckpt_path} has no spiking encoder (model.hybrid=false): nothing to deploy"
        )
    return model.to(device).eval(), cfg, tokenizer


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


def join_and_score(
    model: ASHNet, task: TaskRun, ann: Tensor, output_spikes: np.ndarray
) -> dict[str, float]:
    """The task's metrics with `output_spikes` `(T, rows, out_dim)` re-joined to `ann`."""
    images, n = ann.shape[:2]
    spikes = torch.from_numpy(output_spikes).to(ann.device)
    spikes = spikes.reshape(spikes.shape[0], images, n, -1)
    with torch.no_grad():
        visual = concat_visual(
            [
                model.join_visual(ann[i : i + BATCH], spikes[:, i : i + BATCH])
                for i in range(0, images, BATCH)
            ]
        )
    return task.score(model, visual)


def select_visual(visual: VisualOutput, rows: Tensor) -> VisualOutput:
    """The images `rows` of a `VisualOutput` (spike rates dropped, as in `concat_visual`)."""
    return VisualOutput(
        tokens=visual.tokens[rows],
        ann_tokens=visual.ann_tokens[rows],
        spikes=None if visual.spikes is None else visual.spikes[:, rows],
        image_embed=visual.image_embed[rows],
        spike_embed=None if visual.spike_embed is None else visual.spike_embed[rows],
    )


def concat_visual(parts: list[VisualOutput]) -> VisualOutput:
    """Batches of `VisualOutput` as one (spike rates dropped: they are per batch)."""
    spike_embed = [p.spike_embed for p in parts]
    return VisualOutput(
        tokens=torch.cat([p.tokens for p in parts]),
        ann_tokens=torch.cat([p.ann_tokens for p in parts]),
        spikes=torch.cat([p.spikes for p in parts], dim=1),
        image_embed=torch.cat([p.image_embed for p in parts]),
        spike_embed=None if spike_embed[0] is None else torch.cat(spike_embed),
    )


def encoder_currents(model: ASHNet, images: Tensor, device: torch.device, seed: int) -> tuple:
    """(ANN tokens `(N, n, dim)`, currents `(T, N * n, in_dim)` on the CPU); a Poisson
    encoding draws from `seed`, so Lava and Norse see identical currents."""
    with torch.no_grad():
        ann = torch.cat(
            [
                model.visual_concrete_encoder(images[i : i + BATCH].to(device))
                for i in range(0, len(images), BATCH)
            ]
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            currents = model.semantic_abstract_encoder.encode_input(ann.cpu())
    return ann, currents.contiguous()


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
    if task not in TASKS:
        raise DeployError(f"unknown task {task!r}; deployable: {', '.join(TASKS)}")
    for mode in modes:
        if mode not in MODES:
            raise DeployError(f"unknown mode {mode!r}; use {' or '.join(MODES)}")
    if limit < 1:
        raise DeployError(f"--limit must be at least 1 image, got {limit}")
    load_profile(chip)  # a bad --chip fails before any work
    contract = encoder_contract(nir_path)
    torch_device = resolve_device(device)
    task_model, cfg, tokenizer = load_model(ckpt_path, task, torch_device)
    model = task_model.backbone
    check_belongs(model, contract, nir_path)
    lava_python()  # fail before the task's work when the Lava environment is missing
    run = TASKS[task](task_model, cfg, tokenizer, torch_device, split, limit)
    images = len(run.images)
    ann, currents = encoder_currents(model, run.images, torch_device, seed)
    rows = contract.tokens_per_image
    norse = run_norse(model, currents.to(torch_device))
    names = list(norse.layers)
    output = names[-1]
    record = {
        "checkpoint": str(ckpt_path),
        "nir": str(nir_path),
        "task": task,
        "split": split,
        "main_metric": run.main_metric,
        "n_images": images,
        "n_examples": run.n_examples,
        "rows_per_image": rows,
        "time_steps": contract.time_steps,
        "dt": contract.dt,
        "layer_sizes": dict(zip(names, contract.layer_sizes)),
        "norse": {
            "metrics": join_and_score(model, run, ann, norse.layers[output]),
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
            "metrics": join_and_score(model, run, ann, lava.layers[output]),
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
        help="ckpt.pt of a hybrid ASH-Net, pre-trained or fine-tuned (vqa: fine-tuned for vqa)",
    )
    parser.add_argument("nir", type=Path, help="its encoder.nir (export/to_nir.py)")
    parser.add_argument("--task", default="retrieval", choices=sorted(TASKS))
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
