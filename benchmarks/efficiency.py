"""The accuracy/energy frontier: fine-tune the default checkpoint over time steps, target firing
rate and input coding, deploy each point on Lava (floating_pt, token-parallel) and price its
measured activity with the first layer on the chip and on the host.

A point is a configuration (T, target rate, coding): the default checkpoint's weights (every
weight fits every point: none depends on T, the rate or the coding) fine-tuned for `--steps`
steps of the pre-training objective (`ash_neuro.loop.fit`, lr `--lr` after 5 warm-up steps,
cosine to 10%, batch `--batch`), its encoder exported to NIR (verified) and deployed on the
first `--limit` test images (`ash_neuro.deploy`: retrieval r_mean with Norse's spikes and with
Lava's, spike agreement). Each point's activity is priced twice, the first Affine on the chip
(the export as it is) and on the host (`first_layer` "host": the host's MACs, its currents
one-to-one into lif1; the spikes are the same, so the same run prices both), on the Loihi-class
profile (`--chip`), the 45 nm FP32 and the 45 nm INT8 conventions, beside the ANN-equivalent
of the same layers (FP32, INT8). The default checkpoint itself, not fine-tuned, is the
reference row; the same budget with the default's own configuration is the control row.

The grid is a subset that crosses each axis once from the default (T=4, rate 0.1, current,
chip): T in {1, 2, 8}, rate in {0.02, 0.05, 0.2}, poisson coding, plus poisson at T 1 and 2
(the lever for the 45 nm convention: an accumulate per input spike instead of a MAC per
graded input); `--points` picks others (`T:rate:coding`). Budget stated in the table header.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/efficiency.py --init runs/demo/ckpt.pt \
        [--steps 30] [--limit 200] [--out runs/efficiency] [--points 4:0.1:current 1:0.1:poisson]

Writes `<out>/frontier.md` (the table), `<out>/frontier.json` and `<out>/frontier.png`
(r_mean against energy per image, log scale, one marker per convention, the ANN-equivalent
marked). A finished point (its `point.json`) is reused, so an interrupted run continues; a
finished fine-tuning (its `ckpt.pt` at `--steps`) is only measured again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

# hardware/ is a folder of the repository, not an installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.checkpoint import load_checkpoint  # noqa: E402
from ash_neuro.config import override_config  # noqa: E402
from ash_neuro.data.datasets import (  # noqa: E402
    CaptionDataset,
    Collator,
    images_to_float,
    instance_maps,
)
from ash_neuro.data.sources import (  # noqa: E402
    check_world,
    configured_source,
    data_identity,
    locate_data,
)
from ash_neuro.deploy.encoder_runs import EncoderRun, price_activity  # noqa: E402
from ash_neuro.deploy.report import write_report  # noqa: E402
from ash_neuro.deploy.run import deploy, encoder_contract, encoder_currents  # noqa: E402
from ash_neuro.errors import cli_entry  # noqa: E402
from ash_neuro.loop import fit, run_session  # noqa: E402
from ash_neuro.models.factory import (  # noqa: E402
    PRETRAIN,
    build_model,
    describe_checkpoint,
    load_model,
    reads_instance_maps,
)
from ash_neuro.nir_export.from_checkpoint import export_checkpoint  # noqa: E402
from ash_neuro.objective import PretrainingObjective  # noqa: E402
from ash_neuro.tasks.retrieval import Retrieval  # noqa: E402
from ash_neuro.train import evaluate  # noqa: E402

DEFAULT_POINTS = (
    "4:0.1:current",  # the control: the default's configuration at the same budget
    "1:0.1:current",
    "2:0.1:current",
    "8:0.1:current",
    "4:0.02:current",
    "4:0.05:current",
    "4:0.2:current",
    "4:0.1:poisson",
    "1:0.1:poisson",
    "2:0.1:poisson",
)


def parse_point(spec: str) -> tuple[int, float, str]:
    try:
        steps, rate, coding = spec.split(":")
        return int(steps), float(rate), coding
    except ValueError:
        raise SystemExit(
            f"error: point {spec!r} is not T:rate:coding (e.g. 4:0.1:current)"
        ) from None


def fine_tune(init: Path, point: tuple[int, float, str], args, out: Path) -> Path:
    """The default's weights fine-tuned at `point` into `out/ckpt.pt`."""
    time_steps, rate, coding = point
    loaded = load_model(init)
    cfg = locate_data(loaded.cfg, loaded.data, {})
    cfg = override_config(
        cfg,
        [
            f"model.spiking.time_steps={time_steps}",
            f"model.spiking.encoding={coding}",
            f"loss.target_rate={rate}",
            f"train.max_steps={args.steps}",
            f"train.batch_size={args.batch}",
            f"train.lr={args.lr}",
            "train.warmup_steps=5",
            "train.log_every=10",
            f"train.ckpt_every={args.steps}",
            f"train.eval_limit={args.limit}",
            "train.device=cpu",
            "train.threads=1",
            f"train.seed={args.seed}",
        ],
    )
    check_world(cfg)
    tokenizer = loaded.tokenizer
    with run_session(cfg, out) as (device, dist):
        model = build_model(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
        model.load_state_dict(loaded.backbone.state_dict())  # every weight fits every point
        source = configured_source(cfg, "train")
        dataset = CaptionDataset(
            source,
            "train",
            tokenizer,
            cfg.model.text.max_len,
            caption="random",
            with_panoptic=reads_instance_maps(cfg, source),
        )
        fit(
            name="efficiency",
            cfg=cfg,
            out=out,
            device=device,
            dist=dist,
            model=model,
            objective=PretrainingObjective(model, cfg.loss, tokenizer),
            dataset=dataset,
            collate_fn=Collator(tokenizer, cfg.model.text.max_len),
            state=None,
            validate=lambda: evaluate(model, cfg, tokenizer, device, "val"),
            headline=Retrieval.headline,
            description=describe_checkpoint(PRETRAIN, cfg, tokenizer, data_identity(cfg)),
        )
    return out / "ckpt.pt"


def fine_tuned(ckpt: Path, steps: int) -> bool:
    """A fine-tuning of this budget already finished there (reused: only measured again)."""
    if not ckpt.is_file():
        return False
    return load_checkpoint(ckpt)["progress"]["step"] == steps


def measure(ckpt: Path, args, out: Path, label: str) -> dict:
    """Export, deploy on Lava (floating_pt, token-parallel), price chip and host."""
    graph = out / "encoder.nir"
    export_checkpoint(ckpt, graph, samples=4)
    record, rasters = deploy(
        ckpt, graph, limit=args.limit, modes=("floating_pt",), device="cpu", chip=args.chip
    )
    write_report(record, rasters, out / "deploy")
    lava = record.modes["floating_pt"]
    row = {
        "point": label,
        "time_steps": record.time_steps,
        "r_mean_norse": record.norse.metrics["r_mean"],
        "r_mean_lava": lava.metrics["r_mean"],
        "agreement": lava.agreement.overall,
        "rates": lava.firing_rates,
        "neuron_shares": {k: list(v) for k, v in lava.neuron_shares.items()},
    }
    # the host's side from the same spikes: the export's contract with the first layer moved
    contract = encoder_contract(graph)
    loaded = load_model(ckpt, "retrieval")
    encoder = loaded.backbone.semantic_abstract_encoder
    cfg = locate_data(loaded.cfg, loaded.data, {})
    source = configured_source(cfg, "test")
    images = record.n_images
    pixels = images_to_float(np.stack([source.image(i) for i in range(images)]))
    maps = instance_maps(source, images) if reads_instance_maps(loaded.cfg, source) else None
    _, currents = encoder_currents(loaded.backbone, pixels, torch.device("cpu"), 0, maps)
    with torch.no_grad():
        _, layers = encoder.run(currents)
        host_input = encoder.first_layer_currents(currents)
    spikes = {k: v.numpy() for k, v in layers.items()}
    run = EncoderRun(spikes, 0.0, latency=dict(lava.pipeline_latency_steps))
    for side, energy in (
        ("chip", lava.energy),
        (
            "host",
            price_activity(
                run,
                currents,
                dataclasses.replace(contract, first_layer="host"),
                images,
                args.chip,
                graph_input=host_input.numpy(),
            ),
        ),
    ):
        row[side] = {
            "loihi_uj": energy.snn_uj_per_image,
            "fp32_uj": energy.snn_ops_on_ann_profile_uj_per_image,
            "int8_uj": energy.snn_ops_on_int8_uj_per_image,
            "ann_fp32_uj": energy.ann_uj_per_image,
            "ann_int8_uj": energy.ann_int8_uj_per_image,
            "steps_per_image": energy.steps_per_image,
            "latency_steps": energy.latency_steps_per_image,
            "chip_latency_us": energy.chip_latency_ms_per_image * 1e3,
        }
    return row


def frontier(rows: list[dict], key: str) -> set[tuple[str, str]]:
    """The (point, first layer) pairs no other pair beats in both r_mean (higher) and energy
    `key` (lower)."""
    pairs = [(r["point"], s, r["r_mean_norse"], r[s][key]) for r in rows for s in ("chip", "host")]
    return {
        (label, side)
        for label, side, metric, energy in pairs
        if not any(
            m >= metric and e <= energy and (m, e) != (metric, energy) for _, _, m, e in pairs
        )
    }


def table(rows: list[dict], args) -> str:
    lines = [
        f"Budget: {args.steps} fine-tuning steps per point (batch {args.batch}, lr {args.lr}, one "
        f"thread, seed {args.seed}), r_mean on the first {args.limit} test images; energy per "
        "image from the Lava floating_pt run's activity (agreement with Norse in the table), "
        "token-parallel.",
        "",
        "| point | T | r_mean | agreement | first layer | Loihi-class uJ | 45 nm FP32 uJ | "
        "45 nm INT8 uJ | ANN FP32 uJ | ANN INT8 uJ | FP32 / ANN | chip steps (latency) | "
        "frontier (FP32) |",
        "|---" * 13 + "|",
    ]
    best = frontier(rows, "fp32_uj")
    for r in rows:
        for side in ("chip", "host"):
            e = r[side]
            lines.append(
                f"| {r['point']} | {r['time_steps']} | {r['r_mean_norse']:.2f} | "
                f"{100 * r['agreement']:.4f}% | {side} | {e['loihi_uj']:.2f} | {e['fp32_uj']:.2f} "
                f"| {e['int8_uj']:.3f} | {e['ann_fp32_uj']:.2f} | {e['ann_int8_uj']:.3f} | "
                f"{e['fp32_uj'] / e['ann_fp32_uj']:.2f} | {e['steps_per_image']} "
                f"({e['latency_steps']}) | {'yes' if (r['point'], side) in best else ''} |"
            )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, marker, name in (
        ("loihi_uj", "o", "Loihi-class"),
        ("fp32_uj", "s", "45 nm FP32"),
        ("int8_uj", "^", "45 nm INT8"),
    ):
        for side, fill in (("chip", "full"), ("host", "none")):
            xs = [r[side][key] for r in rows]
            ys = [r["r_mean_norse"] for r in rows]
            colour = "C0" if side == "chip" else "C1"
            ax.scatter(
                xs,
                ys,
                marker=marker,
                label=f"SNN {name}, first layer on {side}",
                facecolors=colour if fill == "full" else "none",
                edgecolors=colour,
            )
    ann = rows[0]["chip"]
    for key, name in (("ann_fp32_uj", "ANN FP32"), ("ann_int8_uj", "ANN INT8")):
        ax.axvline(ann[key], color="grey", linestyle="--")
        ax.text(ann[key], ax.get_ylim()[0], f" {name}", rotation=90, va="bottom", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("energy per image (uJ, log; estimates)")
    ax.set_ylabel("retrieval r_mean (test)")
    ax.set_title("Accuracy against energy per image")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", type=Path, default=Path("runs/demo/ckpt.pt"))
    parser.add_argument("--out", type=Path, default=Path("runs/efficiency"))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--limit", type=int, default=200, help="test images")
    parser.add_argument("--chip", default="loihi2")
    parser.add_argument("--seed", type=int, default=0, help="fine-tuning seed (train.seed)")
    parser.add_argument("--points", nargs="+", default=list(DEFAULT_POINTS))
    args = parser.parse_args()
    rows = []
    todo = [("default (not fine-tuned)", None)] + [(p, parse_point(p)) for p in args.points]
    for label, point in todo:
        folder = args.out / ("default" if point is None else label.replace(":", "_"))
        done = folder / "point.json"
        if done.is_file():
            rows.append(json.loads(done.read_text()))
            continue
        start = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        ckpt = args.init if point is None else folder / "ckpt.pt"
        if point is not None and not fine_tuned(ckpt, args.steps):
            fine_tune(args.init, point, args, folder)
        row = measure(ckpt, args, folder, label)
        row["seconds"] = time.perf_counter() - start
        done.write_text(json.dumps(row, indent=1))
        rows.append(row)
        print(
            f"{label}: r_mean {row['r_mean_norse']:.2f}, FP32 chip {row['chip']['fp32_uj']:.2f} "
            f"host {row['host']['fp32_uj']:.2f} uJ, {row['seconds']:.0f} s",
            flush=True,
        )
    text = table(rows, args)
    print(text)
    (args.out / "frontier.md").write_text(text + "\n")
    (args.out / "frontier.json").write_text(json.dumps(rows, indent=1))
    plot(rows, args.out / "frontier.png")


if __name__ == "__main__":
    main()
