"""Downstream tasks: fine-tune the hybrid ASH-Net and its ANN-only baseline on every task, then
evaluate on the test split beside each task's trivial baseline.

Each pre-trained checkpoint is fine-tuned per task for a fixed step budget (`--steps`, per task
with `--task-steps vqa=400`), from configs/finetune.yaml with the network the checkpoint
describes (`ash_neuro.finetune.finetune_config`: model.* overrides are refused), then evaluated
(`ash_neuro.evaluate`). Prints the table task, metric, trivial baseline, hybrid, ANN-only, and
the fine-tuning time. Runs resume: a rerun (or a killed one) continues from the checkpoints
under --out, and a finished run (its result in results.json at the requested steps, its
checkpoint on disk) is reused as it is; change --out to start afresh.

`--lava` adds, for retrieval and VQA, the hybrid fine-tuned encoder exported to NIR and run in
Lava's floating_pt simulator (`ash_neuro.deploy`) on the first `--lava-limit` test images (and
their captions or questions), beside the same network with the encoder in Norse on those
images (retrieval ranks by ITC there, without ITM re-ranking); kept in lava.json.

    .venv/bin/python benchmarks/downstream.py [--init runs/demo/ckpt.pt]
        [--ann-init runs/bench_pretrain/ann_only/ckpt.pt] [--steps 300] [--tasks vqa,ve]
        [--out runs/bench_downstream] [--lava [--lava-limit 50]] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# hardware/ (used by --lava through ash_neuro.deploy) is a folder of the repository, not a package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.deploy.report import write_report as write_deploy_report
from ash_neuro.deploy.run import deploy
from ash_neuro.errors import cli_entry
from ash_neuro.evaluate import evaluate_checkpoint, write_report
from ash_neuro.finetune import finetune, finetune_config
from ash_neuro.nir_export.from_checkpoint import export_checkpoint
from ash_neuro.registry import TASKS as TASK_REGISTRY

# the rows of the table: each task's standard metric (retrieval: R@1 both ways and the mean)
ROWS = {
    "retrieval": ("t2i_r1", "i2t_r1", "r_mean"),
    "vqa": ("vqa_acc",),
    "nlvr": ("acc",),
    "ve": ("acc",),
    "grounding": ("acc_iou50",),
}
TASKS = tuple(ROWS)
assert set(TASKS) == set(TASK_REGISTRY.names()), "a registered task has no row in the table"
MODELS = ("hybrid", "ann_only")
LAVA_MODE = "floating_pt"
LAVA_TASKS = ("retrieval", "vqa")  # what --lava deploys (every task could be)


def task_steps(default: int, specs: list[str]) -> dict[str, int]:
    steps = dict.fromkeys(TASKS, default)
    for spec in specs:
        task, _, n = spec.partition("=")
        if task not in TASKS or not n.isdigit():
            raise SystemExit(f"error: --task-steps {spec!r} is not TASK=N with TASK in {TASKS}")
        steps[task] = int(n)
    return steps


def run_task(init: Path, task: str, steps: int, out: Path, overrides: list[str]) -> dict:
    """Fine-tune `init` on `task` for `steps` steps into `out`, evaluate on test."""
    # the init checkpoint decides the network (hybrid or ANN-only, its sizes) and the tokenizer
    cfg, loaded = finetune_config(
        "configs/finetune.yaml",
        [f"finetune.task={task}", f"train.max_steps={steps}", *overrides],
        init,
    )
    timing = out / "timing.json"
    start = time.perf_counter()
    finetune(cfg, out, init, resume=True, loaded=loaded)
    done = load_checkpoint(out / "ckpt.pt")["progress"]["step"]
    if not timing.exists() or json.loads(timing.read_text())["steps"] != done:
        # a reused run keeps the time it took when it trained
        timing.write_text(json.dumps({"steps": done, "wall_s": time.perf_counter() - start}))
    report = evaluate_checkpoint(out / "ckpt.pt", split="test", overrides=overrides)
    write_report(report, out)
    return {**report, "finetune_s": json.loads(timing.read_text())["wall_s"], "steps": done}


def finished(results: dict, task: str, name: str, steps: int, out: Path, init: Path) -> bool:
    """The run's result is in results.json at `steps` and its checkpoint reached them from
    this `init` (a run from another init is not reused: `finetune` refuses to resume it)."""
    run = results.get(task, {}).get(name)
    ckpt = out / "ckpt.pt"
    if run is None or run["steps"] != steps or not ckpt.is_file():
        return False
    state = load_checkpoint(ckpt)
    return state["progress"]["step"] == steps and state["init"]["path"] == str(init.resolve())


def run_lava(run_dir: Path, task: str, limit: int, device: str) -> dict:
    """Export the encoder of the fine-tuned hybrid checkpoint in `run_dir` and deploy `task` on
    the first `limit` test images in Lava (floating_pt) beside Norse; the deploy report goes
    to `run_dir/deploy`."""
    ckpt, graph = run_dir / "ckpt.pt", run_dir / "encoder.nir"
    export_checkpoint(ckpt, graph)
    record, rasters = deploy(ckpt, graph, task, "test", limit, (LAVA_MODE,), device)
    write_deploy_report(record, rasters, run_dir / "deploy")
    lava = record.modes[LAVA_MODE]
    return {
        "n_images": record.n_images,
        "n_examples": record.n_examples,
        "norse": dict(record.norse.metrics),
        "lava": dict(lava.metrics),
        "spike_agreement": lava.agreement.overall,
        "lava_wall_s": lava.simulator.wall_s,
    }


def lava_cells(lava: dict, task: str, key: str) -> list[str]:
    """The Norse and Lava cells of a table row ('-' where the task was not deployed)."""
    run = lava.get(task)
    if run is None or key not in run["norse"]:
        return ["-", "-"]
    return [f"{run[side][key]:.1f}" for side in ("norse", "lava")]


def print_tables(results: dict, inits: dict[str, Path], lava: dict | None = None) -> None:
    for name, init in inits.items():
        pre = load_checkpoint(init)["progress"]["step"]
        print(f"{name}: fine-tuned from {init} ({pre} pre-training steps)")
    print()
    header = "| task | metric | trivial baseline | hybrid | ANN-only |"
    if lava:
        header += f" hybrid (Norse) | hybrid (Lava {LAVA_MODE}) |"
    print(header)
    print("|" + " --- |" * header.count(" |"))
    for task, rows in ROWS.items():
        runs = results.get(task)
        if not runs:
            continue
        first = next(iter(runs.values()))
        baseline = first["baseline"]
        for key in rows:
            cells = [f"{runs[m]['metrics'][key]:.1f}" if m in runs else "-" for m in MODELS]
            if lava:
                cells += lava_cells(lava, task, key)
            base = f"{baseline['metrics'][key]:.1f} ({baseline['name']})"
            print(f"| {task} | {key} | {base} | " + " | ".join(cells) + " |")
    if lava:
        print()
        print(
            f"hybrid (Norse) and hybrid (Lava {LAVA_MODE}): the fine-tuned hybrid with its "
            "spiking encoder in Norse or exported to NIR and simulated in Lava, on the same "
            "first test images (retrieval: ITC ranking); hybrid and ANN-only: the whole test "
            "split"
        )
        print()
        print("| task | test images | examples | spike agreement Lava vs Norse | Lava wall s |")
        print("| --- | --- | --- | --- | --- |")
        for task, run in lava.items():
            print(
                f"| {task} | {run['n_images']} | {run['n_examples']} | "
                f"{100 * run['spike_agreement']:.2f}% | {run['lava_wall_s']:.0f} |"
            )
    print()
    print("| task | steps | test examples | hybrid fine-tune+val s | ANN-only fine-tune+val s |")
    print("| --- | --- | --- | --- | --- |")
    for task, runs in results.items():
        first = next(iter(runs.values()))
        cells = [f"{runs[m]['finetune_s']:.0f}" if m in runs else "-" for m in MODELS]
        print(f"| {task} | {first['steps']} | {first['n_examples']} | " + " | ".join(cells) + " |")


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", default="runs/demo/ckpt.pt", help="hybrid pre-trained ckpt")
    parser.add_argument(
        "--ann-init",
        default="runs/bench_pretrain/ann_only/ckpt.pt",
        help="ANN-only pre-trained ckpt ('' to skip the column)",
    )
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps per task")
    parser.add_argument("--task-steps", nargs="*", default=[], metavar="TASK=N")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset")
    parser.add_argument("--out", default="runs/bench_downstream")
    parser.add_argument(
        "--lava", action="store_true", help="also run retrieval and VQA's encoder in Lava"
    )
    parser.add_argument(
        "--lava-limit", type=int, default=50, help="test images deployed on Lava (default 50)"
    )
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="PyTorch side of --lava"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides for every run")
    args = parser.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise SystemExit(f"error: unknown task(s) {sorted(unknown)}; choose from {TASKS}")
    steps = task_steps(args.steps, args.task_steps)
    inits = {"hybrid": Path(args.init)}
    if args.ann_init and Path(args.ann_init).is_file():
        inits["ann_only"] = Path(args.ann_init)
    elif args.ann_init:
        print(f"no ANN-only checkpoint at {args.ann_init}: that column stays empty")
    out = Path(args.out)
    saved = out / "results.json"
    # runs of other tasks from earlier invocations stay in the table
    results: dict[str, dict[str, dict]] = json.loads(saved.read_text()) if saved.exists() else {}
    for task in tasks:
        for name, init in inits.items():
            if finished(results, task, name, steps[task], out / name / task, Path(init)):
                print(f"== {task}: {name}, {steps[task]} steps: reusing {out / name / task}")
                continue
            print(f"== {task}: {name} from {init}, {steps[task]} steps")
            run = run_task(init, task, steps[task], out / name / task, args.overrides)
            results.setdefault(task, {})[name] = run
            saved.write_text(json.dumps(results, indent=2) + "\n")
    lava_saved = out / "lava.json"
    lava: dict[str, dict] = json.loads(lava_saved.read_text()) if lava_saved.exists() else {}
    deployed = [t for t in tasks if t in LAVA_TASKS] if args.lava else []
    for task in deployed:
        print(f"== {task}: hybrid encoder on Lava ({LAVA_MODE}), {args.lava_limit} test images")
        lava[task] = run_lava(out / "hybrid" / task, task, args.lava_limit, args.device)
        lava_saved.write_text(json.dumps(lava, indent=2) + "\n")
    print_tables(results, inits, lava)


if __name__ == "__main__":
    main()
