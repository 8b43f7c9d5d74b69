"""The spiking encoder run on identical currents in Norse (PyTorch) and on Lava's Loihi 2
simulator (through hardware/runner.py), every layer recorded; how far the two runs' spikes
agree, and what a run's activity would cost on a chip (`ash_neuro.energy`, estimates)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ash_neuro.deploy import DeployError
from ash_neuro.deploy.records import EnergyRecord, SimulatorTiming, SpikeAgreement
from ash_neuro.energy import chip_fit, energy_per_image, layer_counts, load_profile, step_time_ns
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.nir_export.contract import EncoderContract
from hardware.quantisation_report import QuantisationReport
from hardware.runner import simulate_on_lava, write_inputs

CHIP = "loihi2"  # the energy profile a run is priced on (ash_neuro/energy_profiles)
ANN = "ann_45nm"  # the profile of the same layers as an ANN
CHUNK = 16  # images per Lava run (one build each): bounds memory, drives the progress bar


@dataclass(frozen=True)
class EncoderRun:
    """One run of the spiking encoder over every row of the deployed images.

    layers        {`lif1`: `(T, rows, width)` spikes, ...} in layer order (the last is the output)
    seconds       wall time of the whole run
    simulator     Lava only: the simulator's timing
    latency       Lava only: {layer: pipeline steps the harness removed}
    quantisation  Lava fixed_pt only: the report of every chunk, added up
    """

    layers: dict[str, np.ndarray]
    seconds: float
    simulator: SimulatorTiming | None = None
    latency: dict[str, int] = field(default_factory=dict)
    quantisation: QuantisationReport | None = None

    def firing_rates(self) -> dict[str, float]:
        """Spikes per neuron per step, by layer."""
        return {name: float(spikes.mean()) for name, spikes in self.layers.items()}


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
    """The graph on Lava in `mode` on currents `(T, rows, in_dim)`, `chunk` images per build,
    every layer recorded.

    Each token row is one Lava sample of T steps (every sample starts from rest, as the
    contract requires); Lava's node names map onto `names` in pipeline order (latency).
    fixed_pt quantises every chunk on all of `currents`, so that all run on the same integers,
    and adds up the chunks' quantisation reports (their current-overflow checks).
    """
    time_steps, rows = currents.shape[:2]
    stream = currents.permute(1, 0, 2).cpu().numpy()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    build_s = run_s = wall_s = 0.0
    steps = 0
    latency: dict[str, int] = {}
    quantisation: QuantisationReport | None = None
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
            wall_s += time.perf_counter() - began
            nodes = sorted(result.spikes, key=lambda node: result.latency[node])
            if len(nodes) != len(names):
                raise DeployError(
                    f"{nir_path} has {len(nodes)} spiking layers on Lava, not {len(names)}"
                )
            for name, node in zip(names, nodes):
                parts[name].append(result.spikes[node].transpose(1, 0, 2))
                latency[name] = result.latency[node]
            build_s += float(result.attrs["build_s"])
            run_s += float(result.attrs["run_s"])
            steps += int(result.attrs["steps_run"])
            if result.quantisation is not None:
                # the overflow under the deployment's layer names, the parameters by graph node
                report = result.quantisation.renamed_overflow(dict(zip(nodes, names)))
                quantisation = report if quantisation is None else quantisation + report
    layers = {name: np.concatenate(chunks, axis=1) for name, chunks in parts.items()}
    timing = SimulatorTiming.of_run(
        build_s, run_s, wall_s, steps, rows // rows_per_image, rows_per_image, time_steps
    )
    return EncoderRun(layers, time.perf_counter() - start, timing, latency, quantisation)


def spike_agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> SpikeAgreement:
    """Fraction of equal (step, row, neuron) entries per layer, and over all layers."""
    per_layer = {name: float(np.mean(a[name] == b[name])) for name in a}
    equal = sum(int(np.count_nonzero(a[n] == b[n])) for n in a)
    return SpikeAgreement(per_layer, equal / sum(a[n].size for n in a))


def price_activity(
    run: EncoderRun,
    currents: Tensor,
    contract: EncoderContract,
    images: int,
    chip: str = CHIP,
    ann: str = ANN,
) -> EnergyRecord:
    """Energy and modelled chip latency per image from a run's activity on `currents`
    `(T, rows, in_dim)` of `images` images (estimates)."""
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
    return EnergyRecord(
        chip=chip_profile,
        ann=ann_profile,
        layers=tuple(
            energy_per_image(counts, contract.tokens_per_image, chip_profile, ann_profile)
        ),
        chip_fit=chip_fit(counts, chip_profile),
        steps_per_image=steps,
        # Lava's pipeline fills once per run, one step per hop
        pipeline_fill_steps=max(run.latency.values()) if run.latency else len(names),
        step_time_ns=step_time_ns(counts, chip_profile),
        dt=contract.dt,
    )
