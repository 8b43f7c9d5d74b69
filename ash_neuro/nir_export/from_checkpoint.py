"""Export the spiking encoder of an ash-neuro checkpoint (`export/to_nir.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ash_neuro.errors import AshError
from ash_neuro.nir_export.contract import ENCODING_DESCRIPTIONS, EncoderContract, NIRExportError
from ash_neuro.nir_export.mapping import lif_widths
from ash_neuro.nir_export.writer import ExportReport, export_network

NO_ENCODER = "this checkpoint has no spiking encoder (model.hybrid=false)"


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path | None = None,
    samples: int = 8,
    seed: int = 0,
) -> ExportReport:
    """Export the semantic abstract encoder of an ash-neuro checkpoint, pre-trained or
    fine-tuned (default output: `encoder.nir` beside it), verified on `samples` images pushed
    through the model's own visual encoder and input encoding."""
    from ash_neuro.checkpoint import load_checkpoint
    from ash_neuro.config import config_from_dict
    from ash_neuro.errors import CheckpointError
    from ash_neuro.finetune import backbone_weights
    from ash_neuro.models.factory import build_model

    if samples < 1:
        raise NIRExportError(f"--samples must be at least 1, got {samples}")
    checkpoint = Path(checkpoint)
    state = load_checkpoint(checkpoint)
    if not isinstance(state.get("config"), dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(
            f"{checkpoint} holds no 'config' and 'model'; point to a ckpt.pt written by "
            "`python -m ash_neuro.train` or `python -m ash_neuro.finetune`"
        )
    cfg = config_from_dict(state["config"])
    if not cfg.model.hybrid:
        raise NIRExportError(NO_ENCODER)
    weights = backbone_weights(state)  # a fine-tuned checkpoint holds them under a prefix
    # The pad id only marks the text embedding's padding row, which the loaded weights
    # overwrite, and never reaches the spiking encoder.
    model = build_model(cfg, vocab_size=_vocab_size(weights, checkpoint), pad_token_id=0)
    # Only the two encoders the samples pass through are loaded (strictly): the rest of the
    # network never reaches the export, and may differ in a checkpoint from older code.
    for part in ("visual_concrete_encoder", "semantic_abstract_encoder"):
        _load_part(model, part, weights, checkpoint)
    model.eval()
    encoder = model.semantic_abstract_encoder
    if encoder is None:
        raise NIRExportError(NO_ENCODER)
    visual = model.visual_concrete_encoder
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
    images, origin = _sample_images(state.get("world"), samples, size, seed)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        currents = encoder.encode_input(visual(images)).contiguous()
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


def _sample_images(world: Any, samples: int, size: int, seed: int) -> tuple[torch.Tensor, str]:
    """Validation images of the checkpoint's world when it is on disk (real inputs exercise the
    encoder's real spiking regime), else uniform random images of the right size."""
    from ash_neuro.data.world_file import WorldSource

    if isinstance(world, str) and Path(world).is_file():
        try:
            source = WorldSource(world, "val")
            if source.image(0).shape[0] == size:
                rng = np.random.default_rng(seed)
                rows = np.sort(rng.choice(len(source), min(samples, len(source)), replace=False))
                pixels = np.stack([source.image(int(i)) for i in rows])
                images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
                return images, f"validation images of {world}"
        except AshError:
            pass  # an unreadable world only costs the realism of the samples
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(samples, 3, size, size, generator=generator), (
        f"uniform random {size}x{size} images (the checkpoint's world file is not on disk)"
    )


def _load_part(model: torch.nn.Module, part: str, weights: Mapping[str, Any], checkpoint: Path):
    from ash_neuro.errors import CheckpointError

    module = getattr(model, part)
    prefix = f"{part}."
    own = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing = [k for k in expected if k not in own]
    unexpected = [k for k in own if k not in expected]
    mismatched = [k for k in expected if k in own and own[k].shape != expected[k].shape]
    for problem, keys in (("lack", missing), ("have unexpected", unexpected)):
        if keys:
            raise CheckpointError(
                f"{checkpoint}: its weights {problem} {len(keys)} entries of the {part} its "
                f"config builds (first: {prefix}{keys[0]}); it was written by other code"
            )
    if mismatched:
        key = mismatched[0]
        raise CheckpointError(
            f"{checkpoint}: {prefix}{key} has shape {tuple(own[key].shape)}; its config builds "
            f"{tuple(expected[key].shape)}; it was written by other code"
        )
    module.load_state_dict(own)


def _vocab_size(weights: Mapping[str, Any], checkpoint: Path) -> int:
    """The vocabulary size, read from the rows of the text embedding in the weights: they must
    match it to load at all, and need no tokenizer file, which may not travel with the
    checkpoint."""
    from ash_neuro.errors import CheckpointError

    shapes = {
        tuple(value.shape)
        for key, value in weights.items()
        if key.endswith("word_embeddings.weight") and getattr(value, "ndim", 0) == 2
    }
    if len(shapes) != 1:
        raise CheckpointError(
            f"{checkpoint}: its weights hold no single text embedding (*word_embeddings.weight)"
        )
    return shapes.pop()[0]
