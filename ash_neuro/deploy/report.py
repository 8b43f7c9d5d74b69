"""The deployment report of `ash_neuro.deploy`: one folder of JSON, Markdown and PNG plots,
read from a `DeploymentRecord` (`ash_neuro.deploy.records`).

report.json        the full record (machine-readable): `DeploymentRecord.to_dict()`
report.md          the tables for people: task metric Lava vs Norse, spike agreement and
                   firing rate per layer, simulator time, energy and latency estimates
raster.png         spike raster of the first image, every layer, Lava (first mode) with
                   the entries where Norse differs marked
firing_rates.png   mean firing rate per layer: Norse and each Lava mode
energy.png         energy per image by layer and operation on the neuromorphic profile,
                   beside the ANN-equivalent of the same layers
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

from ash_neuro.atomic import replace_atomically
from ash_neuro.deploy import DeployError
from ash_neuro.deploy.records import UJ_PER_PJ, DeploymentRecord, EnergyRecord

matplotlib.use("Agg")  # files only; no display on a headless machine
import matplotlib.pyplot as plt  # noqa: E402

FILES = ("report.json", "report.md", "raster.png", "firing_rates.png", "energy.png")


def write_report(
    record: DeploymentRecord,
    rasters: dict[str, dict[str, np.ndarray]],
    folder: Path,
    frontier: Path | None = None,
) -> list[Path]:
    """Write every file of the report into `folder`; returns their paths. `frontier`: a
    `benchmarks/efficiency.py` frontier.json to place the deployment against in report.md.

    report.json, the record machines read (and `make demo` reuses), goes last and atomically,
    after the previous one is removed: a report.json on disk always belongs to a complete
    report."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").unlink(missing_ok=True)
    (folder / "report.md").write_text(markdown(record, frontier))
    plot_raster(rasters, folder / "raster.png")
    plot_firing_rates(record, folder / "firing_rates.png")
    plot_energy(record, folder / "energy.png")
    with replace_atomically(folder / "report.json") as tmp:
        tmp.write_text(json.dumps(record.to_dict(), indent=2) + "\n")
    return [folder / name for name in FILES]


def markdown(record: DeploymentRecord, frontier: Path | None = None) -> str:
    """The report as Markdown tables (with `frontier`, a section placing it on that frontier)."""
    main = record.main_metric
    modes = record.modes
    lines = [
        f"# Deployment: {record.task} on {record.split} "
        f"({record.n_images} images, {record.n_examples} examples)",
        "",
        f"checkpoint `{record.checkpoint}`, encoder `{record.graph}`: "
        f"{record.rows_per_image} token rows per image, {record.time_steps} steps of "
        f"{record.dt * 1e3:g} ms, layers {record.layer_sizes}.",
        "",
        "## Task metrics (percent): encoder in Norse vs on Lava",
        "",
        "| metric | Norse | " + " | ".join(f"Lava {m}" for m in modes) + " |",
        "| --- | --- |" + " --- |" * len(modes),
    ]
    for key, value in record.norse.metrics.items():
        cells = [f"{modes[m].metrics[key]:.2f}" for m in modes]
        name = f"**{key}**" if key == main else key
        lines.append(f"| {name} | {value:.2f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Spiking layers: agreement with Norse and firing rates",
        "",
        "Agreement: fraction of equal (step, row, neuron) spike entries on identical inputs.",
        "",
        "| layer | Norse rate | "
        + " | ".join(f"{m} agreement | {m} rate | {m} latency removed" for m in modes)
        + " |",
        "| --- | --- |" + " --- | --- | --- |" * len(modes),
    ]
    for layer, rate in record.norse.firing_rates.items():
        cells = []
        for m in modes:
            r = modes[m]
            cells += [
                f"{100 * r.agreement.layers[layer]:.3f}%",
                f"{r.firing_rates[layer]:.4f}",
                f"{r.pipeline_latency_steps[layer]} steps",
            ]
        lines.append(f"| {layer} | {rate:.4f} | " + " | ".join(cells) + " |")
    all_cells = " | ".join(f"{100 * modes[m].agreement.overall:.3f}% | | " for m in modes)
    lines.append(f"| all | | {all_cells} |")
    shares = {"Norse": record.norse.neuron_shares}
    shares |= {m: modes[m].neuron_shares for m in modes if modes[m].neuron_shares}
    if record.norse.neuron_shares:
        lines += [
            "",
            "Silent and saturated neurons: the share of each layer's neurons that never fired "
            "on any deployed token row, and that fired at every step of every row (no "
            "information either way, energy all the same).",
            "",
            "| layer | "
            + " | ".join(f"{side} silent | {side} saturated" for side in shares)
            + " |",
            "| --- |" + " --- | --- |" * len(shares),
        ]
        for layer in record.norse.neuron_shares:
            cells = [
                f"{100 * shares[side][layer][0]:.1f}% | {100 * shares[side][layer][1]:.1f}%"
                for side in shares
            ]
            lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Lava delivers each Dense hop one step late; the harness removes that pipeline latency "
        "(per layer above) and compares spikes step for step. On a chip the output of a "
        "sample arrives that many steps after its input.",
        "",
        "## Time per image",
        "",
        "| | seconds per image | images/s | per-step floor (s/image) | ms per step |",
        "| --- | --- | --- | --- | --- |",
        f"| Norse (PyTorch) | {record.norse.seconds_per_image:.4f} | "
        f"{1 / max(record.norse.seconds_per_image, 1e-12):.1f} | | |",
    ]
    for m in modes:
        s = modes[m].simulator
        lines.append(
            f"| Lava {m} (simulator wall time, not chip time) | {s.seconds_per_image:.3f} | "
            f"{s.images_per_s:.1f} | {s.step_floor_seconds_per_image:.3f} | {s.ms_per_step:.2f} |"
        )
    for m in modes:
        lines += ["", *energy_lines(m, modes[m].energy, record.time_steps)]
    first = next(iter(modes.values()), None)
    if first is not None:
        lines += ["", "## Sources of the per-operation figures", ""]
        for profile in (first.energy.chip, first.energy.ann, first.energy.int8):
            lines.append(f"- **{profile.name}**: {profile.description}")
            for figure, value in profile.values.items():
                lines.append(f"  - `{figure}` = {value:g}: {profile.sources[figure]}")
            for figure, value in profile.capacity.items():
                source = profile.capacity_sources[figure]
                lines.append(f"  - `{figure}` = {value:g}: {source}")
    for m in modes:
        quantisation = modes[m].quantisation
        if quantisation is not None:
            lines += ["", f"## Quantisation ({m})", "", "```", quantisation.text(), "```"]
    if frontier is not None and modes:
        lines += ["", *frontier_lines(record, frontier)]
    lines += [
        "",
        "Plots: `raster.png` (first image), `firing_rates.png`, `energy.png`.",
    ]
    return "\n".join(lines) + "\n"


def frontier_lines(record: DeploymentRecord, path: Path) -> list[str]:
    """Where this deployment's energy sits against the points of `benchmarks/efficiency.py`'s
    frontier.json `path` (its r_mean is measured on the frontier's own test images, so
    accuracy is compared within the frontier, energy across)."""
    try:
        rows = json.loads(Path(path).read_text())
        points = [
            (r["point"], side, float(r["r_mean_norse"]), float(r[side]["fp32_uj"]))
            for r in rows
            for side in ("chip", "host")
        ]
        reference = next(r for r in rows if r["point"].startswith("default"))
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        raise DeployError(
            f"--frontier {path} is not a frontier.json of benchmarks/efficiency.py ({exc})"
        ) from None
    energy = next(iter(record.modes.values())).energy
    own = energy.snn_ops_on_ann_profile_uj_per_image
    side = "host" if energy.host.macs or energy.host.accumulates else "chip"
    floor = float(reference["r_mean_norse"]) - 2
    cheaper = sorted((p for p in points if p[3] < own and p[2] >= floor), key=lambda p: p[3])
    lines = [
        f"## Against the accuracy/energy frontier (`{path}`)",
        "",
        f"This deployment: T={record.time_steps}, first layer on the {side}, "
        f"{own:.2f} uJ per image on the 45 nm FP32 convention "
        f"({energy.snn_uj_per_image:.2f} uJ Loihi-class, ANN-equivalent "
        f"{energy.ann_uj_per_image:.2f} uJ). The frontier's default checkpoint reaches r_mean "
        f"{reference['r_mean_norse']:.2f} there at {reference[side]['fp32_uj']:.2f} uJ.",
    ]
    if cheaper:
        best = cheaper[0]
        lines.append(
            f"{len(cheaper)} frontier point(s) cost less at an r_mean within 2 points of the "
            f"default's; the cheapest: {best[0]}, first layer on the {best[1]}, r_mean "
            f"{best[2]:.2f} at {best[3]:.2f} uJ ({best[3] / own:.0%} of this deployment's)."
        )
    else:
        lines.append("No frontier point costs less at an r_mean within 2 points of the default's.")
    return lines


def energy_lines(mode: str, e: EnergyRecord, time_steps: int) -> list[str]:
    """The energy and latency section of one mode."""
    chip = e.chip.name
    lines = [
        f"## Energy and latency per image ({mode}): estimates, not measurements",
        "",
        f"Modelled from published per-operation figures ({chip}, {e.ann.name}, {e.int8.name}) "
        "and the run's measured activity; see the sources below. Loihi-class: the chip's "
        "events (active and inactive neuron updates, synaptic ops, spike messages) plus any "
        "host work as INT8; 45 nm FP32 / INT8: arithmetic only (a MAC per graded input, an "
        "accumulate per spike), beside the same layers as an ANN (a MAC per weight per token)."
        + (
            f" Per-operation basis of {chip}: {e.chip.per_operation_basis}."
            if e.chip.per_operation_basis
            else ""
        ),
        "",
        f"| layer | synaptic ops | neuron updates (active) | messages | SNN on {chip} (uJ) "
        "| SNN 45 nm FP32 (uJ) | SNN 45 nm INT8 (uJ) | ANN MACs | ANN FP32 (uJ) "
        "| ANN INT8 (uJ) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for layer in e.layers:
        lines.append(
            f"| {layer.name} | {layer.synaptic_ops:.3g} | {layer.neuron_updates:.3g} "
            f"({layer.active_updates:.3g}) | {layer.messages:.3g} | "
            f"{layer.snn_pj * UJ_PER_PJ:.3f} | {layer.snn_on_ann_pj * UJ_PER_PJ:.3f} | "
            f"{layer.snn_on_int8_pj * UJ_PER_PJ:.3f} | {layer.ann_macs:.3g} | "
            f"{layer.ann_pj * UJ_PER_PJ:.3f} | {layer.ann_int8_pj * UJ_PER_PJ:.3f} |"
        )
    if e.host.macs or e.host.accumulates:
        lines.append(
            f"| host: first Affine ({e.host.macs:.3g} MACs, {e.host.accumulates:.3g} adds) "
            f"| | | | {e.host_uj_per_image:.3f} | {e.host.pj(e.ann) * UJ_PER_PJ:.3f} | "
            f"{e.host.pj(e.int8) * UJ_PER_PJ:.3f} | | | |"
        )
    lines += [
        f"| total | | | | {e.snn_uj_per_image:.3f} | "
        f"{e.snn_ops_on_ann_profile_uj_per_image:.3f} | {e.snn_ops_on_int8_uj_per_image:.3f} "
        f"| | {e.ann_uj_per_image:.3f} | {e.ann_int8_uj_per_image:.3f} |",
        "",
    ]
    mapping = e.mapping
    if e.layout == "token_parallel":
        how = (
            f"token-parallel: the image's {mapping.copies} token rows at once on as many copies "
            f"of the encoder, {e.steps_per_image} steps per image"
        )
    else:
        how = f"streaming: token rows one after another, {time_steps} steps each"
    lines.append(
        f"Latency ({how}): {e.latency_steps_per_image} steps from an image's first input to "
        f"its output ({e.steps_per_image} + {e.pipeline_fill_steps} of pipeline, one per hop) "
        f"x {e.step_time_us:.3f} us per modelled step = {e.chip_latency_ms_per_image:.4f} ms "
        f"per image; back to back {e.chip_images_per_s:,.0f} images/s on the chip model; "
        f"{e.biological_time_ms_per_image:g} ms of model time (dt) per image. A step: the "
        f"busiest core's synaptic ops and neuron updates ({mapping.cores} cores on "
        f"{mapping.tiles} tiles) or the spike traffic over the tiles' bandwidth, plus the "
        f"barrier sync of {mapping.tiles} tiles ({mapping.barrier_sync_ns:.0f} ns)."
    )
    fit = e.chip_fit
    if fit is not None:
        lines += [
            "",
            f"Capacity ({mapping.copies} {'copy' if mapping.copies == 1 else 'copies'} of the "
            f"encoder): {fit.neurons:,.0f} neurons ({fit.neuron_share:.3%} of one {chip} "
            f"chip's {fit.neurons_per_chip:,.0f}) and {fit.synapses:,.0f} synapses "
            f"({fit.synapse_share:.3%} of {fit.synapses_per_chip:,.0f}): "
            + ("fits one chip." if fit.fits_one_chip else "does NOT fit one chip."),
        ]
    return lines


def plot_raster(rasters: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """Spikes `(T, rows, width)` of one image, a row of plots per layer and a column per Lava
    mode (Norse alone without one): step r * T + t on x, neuron on y, Norse's differences red.
    """
    sides = [side for side in rasters if side != "norse"] or ["norse"]
    layers = list(rasters[sides[0]])
    fig, axes = plt.subplots(
        len(layers), len(sides), figsize=(7 * len(sides), 2.5 * len(layers)), squeeze=False
    )
    for column, side in enumerate(sides):
        for ax, layer in zip(axes[:, column], layers):
            spikes = rasters[side][layer]
            steps, rows, _ = spikes.shape
            flat = spikes.transpose(1, 0, 2).reshape(rows * steps, -1)
            x, y = np.nonzero(flat)
            ax.scatter(x, y, s=1, c="black")
            norse = rasters["norse"][layer].transpose(1, 0, 2).reshape(rows * steps, -1)
            dx, dy = np.nonzero(norse != flat)
            ax.scatter(dx, dy, s=8, c="red", marker="x")
            ax.set_title(f"{layer}, {side}: {len(dx)} entries differ from Norse", fontsize=9)
            ax.set_ylabel("neuron")
            ax.set_xlim(0, rows * steps)
        axes[-1, column].set_xlabel("step (token row x T + t)")
    fig.suptitle("Spike raster of the first image (black: spikes; red x: differs from Norse)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_firing_rates(record: DeploymentRecord, path: Path) -> None:
    """Mean firing rate per layer: Norse and every Lava mode side by side."""
    layers = list(record.norse.firing_rates)
    sides = {"Norse": record.norse.firing_rates}
    sides |= {f"Lava {m}": r.firing_rates for m, r in record.modes.items()}
    width = 0.8 / len(sides)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (side, rates) in enumerate(sides.items()):
        x = np.arange(len(layers)) + i * width
        ax.bar(x, [rates[layer] for layer in layers], width, label=side)
    ax.set_xticks(np.arange(len(layers)) + width * (len(sides) - 1) / 2, layers)
    ax.set_ylabel("spikes per neuron per step")
    ax.set_title("Firing rate per layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_energy(record: DeploymentRecord, path: Path) -> None:
    """Energy per image by layer and operation (first mode), beside the ANN-equivalent."""
    modes = record.modes
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if modes:
        mode, result = next(iter(modes.items()))
        layers = result.energy.layers
        names = [layer.name for layer in layers]
        x = np.arange(len(names))
        bottom = np.zeros(len(names))
        for figure, label in (
            ("synaptic_pj", "synaptic ops"),
            ("neuron_pj", "neuron updates"),
            ("message_pj", "messages"),
        ):
            values = np.array([getattr(layer, figure) * UJ_PER_PJ for layer in layers])
            ax.bar(x - 0.2, values, 0.4, bottom=bottom, label=f"SNN on Loihi: {label}")
            bottom += values
        ann = [layer.ann_pj * UJ_PER_PJ for layer in layers]
        ax.bar(x + 0.2, ann, 0.4, color="grey", label="ANN equivalent, 45 nm MACs")
        ax.set_xticks(x, names)
        ax.set_title(f"Energy per image ({mode}; estimates, not measurements)")
    ax.set_ylabel("uJ per image")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
