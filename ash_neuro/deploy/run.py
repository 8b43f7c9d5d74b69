"""`deploy()`: the checkpoint's hybrid network with its encoder in Norse and on Lava, side by
side on the first images of a split (the package docstring has the picture).

Loading goes through `ash_neuro.models.factory.load_model`; before any work the graph must
belong to the checkpoint (its export contract and its weights). The PyTorch ends of the
encoder live here: the visual tokens become its currents, and each side's output spikes are
re-joined to their tokens as the task's encode hook, so that the task's own evaluation reads
them (`ash_neuro.tasks`).
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch
from torch import Tensor

from ash_neuro.data.datasets import images_to_float, instance_maps
from ash_neuro.data.sources import configured_source, locate_data
from ash_neuro.deploy import DeployError
from ash_neuro.deploy.encoder_runs import (
    CHIP,
    CHUNK,
    price_activity,
    run_lava,
    run_norse,
    spike_agreement,
)
from ash_neuro.deploy.records import DeploymentRecord, LavaModeRecord, NorseRecord
from ash_neuro.energy import LAYOUTS, load_profile
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
    read_sidecar,
    sidecar_path,
)
from ash_neuro.runtime import resolve_device
from hardware.runner import MODES, lava_python

BATCH = 64  # images per PyTorch forward pass
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
    try:
        if sidecar_path(nir_path).is_file():
            return read_sidecar(nir_path)
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
    try:
        graph = nir.read(nir_path)
    except Exception as exc:  # nir raises bare Key/Value/OSErrors on a damaged file
        detail = " ".join(str(exc).split())[:120]
        raise DeployError(
            f"{nir_path} is not a readable NIR graph ({type(exc).__name__}: {detail}); export "
            "it again with `python export/to_nir.py ckpt.pt`"
        ) from None
    affine = [n for n in graph.nodes.values() if isinstance(n, nir.Affine | nir.Linear)]
    linears = [m for m in encoder.network if isinstance(m, torch.nn.Linear)]
    # with the first layer on the host, that layer is the checkpoint's, not the graph's
    for layer in linears[1:] if contract.first_layer == "host" else linears:
        weight = layer.weight.detach().cpu().numpy()
        if not any(
            n.weight.shape == weight.shape and np.allclose(n.weight, weight, atol=1e-6)
            for n in affine
        ):
            raise DeployError(
                f"{nir_path} was not exported from this checkpoint: no graph weight matches its "
                f"{weight.shape[1]}->{weight.shape[0]} layer; re-export with export/to_nir.py"
            )


# --- the PyTorch ends of the encoder ---------------------------------------------------------


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


# --- the deployment --------------------------------------------------------------------------


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
    layout: str = "token_parallel",
) -> tuple[DeploymentRecord, dict[str, dict[str, np.ndarray]]]:
    """Run the deployment; returns (its record, every side's spikes of the first image
    `{side: {layer: (T, rows_per_image, width)}}` for the raster plot). `layout`: how the chip
    holds an image's token rows (`token_parallel`, all at once on copies of the encoder, or
    `streaming`, one after another), on Lava's simulator and in the chip model."""
    for mode in modes:
        if mode not in MODES:
            raise DeployError(f"unknown mode {mode!r}; use {' or '.join(MODES)}")
    if limit < 1:
        raise DeployError(f"--limit must be at least 1 image, got {limit}")
    if chunk < 1:
        raise DeployError(f"--chunk must be at least 1 image per Lava build, got {chunk}")
    if layout not in LAYOUTS:
        raise DeployError(f"unknown --layout {layout!r}; use {' or '.join(LAYOUTS)}")
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
    # the graph's input: the currents, or the host's first Affine of them (`first_layer`)
    graph_input = currents
    if contract.first_layer == "host":
        with torch.no_grad():
            encoder = model.semantic_abstract_encoder
            graph_input = encoder.first_layer_currents(currents.to(torch_device)).cpu()
    names = list(norse.layers)
    output = names[-1]

    def evaluate(layers: dict[str, np.ndarray]) -> dict[str, float]:
        encode = rejoin(model, features, layers[output])
        return task_model.task.evaluate(
            task_model, source, split, loaded.tokenizer, torch_device, images, encode
        )

    norse_metrics = evaluate(norse.layers)
    n_examples = norse_metrics.pop("n")
    rasters = {"norse": {n: s[:, :rows] for n, s in norse.layers.items()}}
    lava_modes = {}
    for mode in modes:
        lava = run_lava(nir_path, graph_input, rows, names, mode, chunk, layout)
        lava_modes[mode] = LavaModeRecord(
            metrics={k: v for k, v in evaluate(lava.layers).items() if k != "n"},
            agreement=spike_agreement(lava.layers, norse.layers),
            firing_rates=lava.firing_rates(),
            pipeline_latency_steps=lava.latency,
            simulator=lava.simulator,
            quantisation=lava.quantisation,
            neuron_shares=lava.neuron_shares(),
            energy=price_activity(
                lava, currents, contract, images, chip, layout, graph_input.numpy()
            ),
        )
        rasters[mode] = {n: s[:, :rows] for n, s in lava.layers.items()}
    record = DeploymentRecord(
        checkpoint=ckpt_path,
        graph=nir_path,
        task=task_model.name,
        split=split,
        main_metric=task_model.task.main_metric,
        n_images=images,
        n_examples=n_examples,
        rows_per_image=rows,
        time_steps=contract.time_steps,
        dt=contract.dt,
        layer_sizes=dict(zip(names, contract.layer_sizes)),
        norse=NorseRecord(
            norse_metrics, norse.firing_rates(), norse.seconds / images, norse.neuron_shares()
        ),
        modes=lava_modes,
    )
    return record, rasters
