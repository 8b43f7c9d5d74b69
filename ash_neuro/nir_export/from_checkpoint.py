"""Export the spiking encoder of an ash-neuro checkpoint (`export/to_nir.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ash_neuro.errors import AshError
from ash_neuro.nir_export.contract import ENCODING_DESCRIPTIONS, EncoderContract, NIRExportError
from ash_neuro.nir_export.mapping import lif_widths
from ash_neuro.nir_export.writer import ExportReport, export_network

NO_ENCODER = "this checkpoint has no spiking encoder (model.spiking.kind=none)"


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path | None = None,
    samples: int = 8,
    seed: int = 0,
) -> ExportReport:
    """Export the semantic abstract encoder of an ash-neuro checkpoint, pre-trained or
    fine-tuned (default output: `encoder.nir` beside it), verified on `samples` images pushed
    through the model's own visual encoder and input encoding."""
    from ash_neuro.models.factory import load_model, reads_instance_maps

    if samples < 1:
        raise NIRExportError(f"--samples must be at least 1, got {samples}")
    checkpoint = Path(checkpoint)
    # Only the two encoders the samples pass through are loaded: nothing else reaches the graph.
    loaded = load_model(checkpoint, parts=("visual_concrete_encoder", "semantic_abstract_encoder"))
    encoder = loaded.backbone.semantic_abstract_encoder
    if encoder is None:
        raise NIRExportError(NO_ENCODER)
    visual = loaded.backbone.visual_concrete_encoder
    contract = EncoderContract(
        time_steps=encoder.time_steps,
        dt=encoder.dt,
        in_dim=encoder.in_dim,
        out_dim=encoder.out_dim,
        tokens_per_image=visual.n_tokens,
        layer_sizes=lif_widths(encoder.network),
        input_encoding=encoder.encoding,
        input_gain=float(encoder.input_gain),
        encoding=ENCODING_DESCRIPTIONS[encoder.encoding],
    )
    size = visual.image_size
    world = loaded.data.location if loaded.data.kind == "world" else None
    reads_maps = reads_instance_maps(loaded.cfg)
    images, maps, origin = sample_images(world, samples, size, seed, reads_maps)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        currents = encoder.encode_input(visual(images, maps).tokens, generator).contiguous()
    described = (
        f"{samples} {origin} through the checkpoint's visual encoder and its "
        f"'{encoder.encoding}' input encoding: currents {tuple(currents.shape)}"
    )
    output = Path(output) if output is not None else checkpoint.with_name("encoder.nir")
    return export_network(
        encoder.network,
        contract,
        output,
        currents,
        run_original=lambda x: encoder.run(x)[0],
        samples=described,
    )


def sample_images(
    world: Any, samples: int, size: int, seed: int, with_panoptic: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """Validation images of the checkpoint's world when it is on disk (real inputs exercise the
    encoder's real spiking regime), with their panoptic instance maps for a visual encoder
    that reads them; else uniform random images of the right size and no maps (an instance
    encoder then segments them by its fallback)."""
    from ash_neuro.data.world_file import WorldSource

    if isinstance(world, str) and Path(world).is_file():
        try:
            source = WorldSource(world, "val")
            if source.image(0).shape[0] == size:
                rng = np.random.default_rng(seed)
                rows = np.sort(rng.choice(len(source), min(samples, len(source)), replace=False))
                pixels = np.stack([source.image(int(i)) for i in rows])
                images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
                maps = None
                if with_panoptic:
                    maps = torch.from_numpy(
                        np.stack([source.panoptic(int(i))[0] for i in rows]).astype(np.int64)
                    )
                return images, maps, f"validation images of {world}"
        except AshError:
            pass  # an unreadable world only costs the realism of the samples
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(samples, 3, size, size, generator=generator),
        None,
        (f"uniform random {size}x{size} images (the checkpoint's world file is not on disk)"),
    )
