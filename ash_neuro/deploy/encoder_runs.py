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
from ash_neuro.energy import (
    LAYOUTS,
    HostWork,
    LayerCounts,
    chip_fit,
    chip_mapping,
    energy_per_image,
    load_profile,
    step_time_ns,
)
from ash_neuro.models.ash_net import ASHNet
from ash_neuro.models.semantic_abstract_encoder import silent_and_saturated
from ash_neuro.nir_export.contract import EncoderContract
from hardware.quantisation_report import QuantisationReport
from hardware.runner import simulate_on_lava, write_inputs

CHIP = "loihi2"  # the energy profile a run is priced on (ash_neuro/energy_profiles)
ANN = "ann_45nm"  # the profile of the same layers as an ANN, 32-bit float
INT8 = "ann_45nm_int8"  # and as 8-bit integers (the fair comparison for fixed_pt)
CHUNK = 256  # images per Lava run (one build each): bounds memory, amortises the build


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

    def neuron_shares(self) -> dict[str, tuple[float, float]]:
        """Per layer, the shares of its neurons that never fired and that fired at every step,
        over every row of the run (`silent_and_saturated`)."""
        return {
            name: silent_and_saturated(torch.as_tensor(spikes))
            for name, spikes in self.layers.items()
        }


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
    layout: str = "token_parallel",
) -> EncoderRun:
    """The graph on Lava in `mode` on currents `(T, rows, in_dim)`, `chunk` images per build,
    every layer recorded.

    Each token row is one Lava sample of T steps (every sample starts from rest, as the
    contract requires): with `layout` "token_parallel" an image's rows run at once on one copy
    of the network each (the harness's --parallel-samples), "streaming" one after another
    through one copy. Lava's node names map onto `names` in pipeline order (latency).
    fixed_pt quantises every chunk on all of `currents`, so that all run on the same integers,
    and adds up the chunks' quantisation reports (their current-overflow checks).
    """
    if layout not in LAYOUTS:
        raise DeployError(f"unknown layout {layout!r}; use {' or '.join(LAYOUTS)}")
    copies = rows_per_image if layout == "token_parallel" else 1
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
                nir_path,
                part,
                mode,
                record_spikes=True,
                quantise_on=calibration,
                parallel_samples=copies,
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
    steps_per_image = time_steps * (rows_per_image // copies)
    timing = SimulatorTiming.of_run(
        build_s, run_s, wall_s, steps, rows // rows_per_image, steps_per_image
    )
    return EncoderRun(layers, time.perf_counter() - start, timing, latency, quantisation)


def spike_agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> SpikeAgreement:
    """Fraction of equal (step, row, neuron) entries per layer, and over all layers."""
    per_layer = {name: float(np.mean(a[name] == b[name])) for name in a}
    equal = sum(int(np.count_nonzero(a[n] == b[n])) for n in a)
    return SpikeAgreement(per_layer, equal / sum(a[n].size for n in a))


def activity_counts(
    contract: EncoderContract,
    graph_input: np.ndarray,
    layers: dict[str, np.ndarray],
    images: int,
) -> list[LayerCounts]:
    """Every spiking population's operations per image (`ash_neuro.energy.LayerCounts`) from a
    run's spikes `layers` {name: `(T, rows, width)`} on `graph_input` `(T, rows, width)`, what
    the graph's Input received: the currents, or with the first layer on the host, the host's
    currents, delivered one-to-one.

    An update is active where an event reached the neuron in that step (a dense connection: any
    event in its token row; one-to-one: its own) or where it spiked; the rest are inactive."""
    host = contract.first_layer == "host"
    sources = [graph_input, *list(layers.values())[:-1]]
    fan_in = [contract.in_dim, *contract.layer_sizes[:-1]]
    counts = []
    for index, ((name, spikes), inputs) in enumerate(zip(layers.items(), sources)):
        steps, rows, width = spikes.shape
        fired = spikes != 0
        one_to_one = index == 0 and host
        if one_to_one:
            active = np.count_nonzero((inputs != 0) | fired)
        else:
            reached = np.count_nonzero(inputs, axis=-1) > 0  # (T, rows)
            active = reached.sum() * width + np.count_nonzero(fired & ~reached[..., None])
        graded = index == 0 and (host or contract.input_encoding == "current")
        counts.append(
            LayerCounts(
                name=name,
                width=width,
                ann_fan_in=fan_in[index],
                synapses_per_event=1 if one_to_one else width,
                synapses=width if one_to_one else int(inputs.shape[-1]) * width,
                input_events=float(np.count_nonzero(inputs)) / images,
                graded=graded,
                spikes=float(np.count_nonzero(fired)) / images,
                neuron_updates=float(steps * rows * width) / images,
                active_updates=float(active) / images,
            )
        )
    return counts


def host_work(contract: EncoderContract, currents: np.ndarray, images: int) -> HostWork:
    """The first Affine's arithmetic on the host per image (`first_layer` "host"; none on the
    chip): the constant currents of the current coding once per token row (`in_dim x width`
    MACs), the spikes of the poisson coding every step (`width` accumulates per input spike)."""
    if contract.first_layer != "host":
        return HostWork()
    width = contract.layer_sizes[0]
    if contract.input_encoding == "current":
        return HostWork(macs=float(contract.tokens_per_image * contract.in_dim * width))
    return HostWork(accumulates=float(np.count_nonzero(currents)) * width / images)


def price_activity(
    run: EncoderRun,
    currents: Tensor | np.ndarray,
    contract: EncoderContract,
    images: int,
    chip: str = CHIP,
    layout: str = "token_parallel",
    graph_input: Tensor | np.ndarray | None = None,
) -> EnergyRecord:
    """Energy and modelled chip latency per image from a run's activity on `currents`
    `(T, rows, in_dim)` of `images` images (estimates), the chip holding the image's token rows
    as `layout` says (`LAYOUTS`); `graph_input`: what the graph's Input received when that is
    not `currents` (the host's currents, first layer on the host)."""
    if layout not in LAYOUTS:
        raise DeployError(f"unknown layout {layout!r}; use {' or '.join(LAYOUTS)}")
    chip_profile = load_profile(chip)
    ann_profile, int8_profile = load_profile(ANN), load_profile(INT8)
    currents = np.asarray(currents)
    graph_input = currents if graph_input is None else np.asarray(graph_input)
    counts = activity_counts(contract, graph_input, run.layers, images)
    rows, time_steps = contract.tokens_per_image, contract.time_steps
    copies = rows if layout == "token_parallel" else 1
    steps = time_steps if layout == "token_parallel" else rows * time_steps
    mapping = chip_mapping(counts, copies, chip_profile)
    return EnergyRecord(
        chip=chip_profile,
        ann=ann_profile,
        int8=int8_profile,
        layers=tuple(
            energy_per_image(
                counts, rows, chip_profile, ann_profile, int8_profile, mapping.hops_per_message
            )
        ),
        host=host_work(contract, currents, images),
        layout=layout,
        mapping=mapping,
        chip_fit=chip_fit(counts, chip_profile, copies),
        steps_per_image=steps,
        # Lava's pipeline: an image's output leaves one step per hop after its input
        pipeline_fill_steps=max(run.latency.values()) if run.latency else len(counts),
        step_time_ns=step_time_ns(counts, chip_profile, mapping, steps),
        dt=contract.dt,
    )
