"""Downstream tasks: fine-tune the hybrid ASH-Net and its ANN-only baseline on every task, then
evaluate on the test split beside each task's trivial baseline.

Each pre-trained checkpoint is fine-tuned per task for a fixed step budget (`--steps`, per task
with `--task-steps vqa=400`), from configs/finetune.yaml with the network the checkpoint
describes (`ash_neuro.finetune.finetune_config`: model.* overrides are refused), then evaluated
(`ash_neuro.evaluate`). Prints the table task, metric, trivial baseline, hybrid, ANN-only, and
the fine-tuning time. Runs resume: a rerun (or a killed one) continues from the checkpoints
under --out, and a finished run (its result in results.json at the requested steps, its
checkpoint on disk) is reused as it is; change --out to start afresh.

`--text-init NAME` compares text encoders instead: the default config is pre-trained twice at
the same budget on a reduced world (`TEXT_INIT_WORLD`, `--pretrain-steps` steps), with the
scratch BERT and with `model.text.pretrained=NAME` (e.g. minilm, the packaged all-MiniLM-L6-v2;
its parameters at `train.pretrained_lr_scale` 0.1 of the learning rate), then both are
fine-tuned on the tasks (default retrieval and VQA) with the same steps; the table's columns are
the two text encoders. `--seeds 0,1,2` repeats it per `train.seed` (under OUT/seed<N>) and ends
with the mean ± std over the seeds.

`--lava` adds, for retrieval and VQA, the hybrid fine-tuned encoder exported to NIR and run in
Lava's floating_pt simulator (`ash_neuro.deploy`) on the first `--lava-limit` test images (and
their captions or questions), beside the same network with the encoder in Norse on those
images (retrieval ranks by ITC there, without ITM re-ranking); kept in lava.json.

    .venv/bin/python benchmarks/downstream.py [--init runs/demo/ckpt.pt]
        [--ann-init runs/bench_pretrain/ann_only/ckpt.pt] [--steps 300] [--tasks vqa,ve]
        [--out runs/bench_downstream] [--lava [--lava-limit 50]] [key=value ...]
    .venv/bin/python benchmarks/downstream.py --text-init minilm [--pretrain-steps 100]
        [--steps 30] [--seeds 0,1,2] [--out runs/bench_text_init] [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

# hardware/ (used by --lava through ash_neuro.deploy) is a folder of the repository, not a package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ash_neuro.checkpoint import load_checkpoint
from ash_neuro.config import load_config
from ash_neuro.data.generate import generate_world
from ash_neuro.deploy.report import write_report as write_deploy_report
from ash_neuro.deploy.run import deploy
from ash_neuro.errors import cli_entry
from ash_neuro.evaluate import evaluate_checkpoint, write_report
from ash_neuro.finetune import finetune, finetune_config
from ash_neuro.nir_export.from_checkpoint import export_checkpoint
from ash_neuro.registry import TASKS as TASK_REGISTRY
from ash_neuro.train import train

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
COLUMN_NAMES = {"hybrid": "hybrid", "ann_only": "ANN-only"}
# --text-init: the reduced world and pre-training settings of benchmarks/methods.py, one thread
TEXT_INIT_WORLD = [
    "world.n_train=2000",
    "world.n_val=200",
    "world.n_test=200",
    "world.n_compositional=50",
]
TEXT_INIT_PRETRAIN = [
    "train.lr=1e-3",
    "train.warmup_steps=10",
    "train.eval_limit=200",
    "train.threads=1",
    "train.pretrained_lr_scale=0.1",  # the pretrained text encoder moves 10x slower
]
TEXT_INIT_FINETUNE = ["train.warmup_steps=5", "train.eval_limit=200", "train.threads=1"]
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


def pretrain_text_inits(
    text_init: str, steps: int, out: Path, overrides: list[str]
) -> dict[str, Path]:
    """Pre-train the default config with the scratch BERT and with `text_init` as the text
    backbone, same world and budget; {column name: checkpoint}."""
    world = out / "world.h5"
    generate_world(load_config("configs/default.yaml", TEXT_INIT_WORLD).world, world)
    inits = {}
    for name, extra in (("scratch", []), (text_init, [f"model.text.pretrained={text_init}"])):
        given = [*TEXT_INIT_WORLD, f"world.path={world}", *TEXT_INIT_PRETRAIN]
        cfg = load_config(
            "configs/default.yaml", [*given, f"train.max_steps={steps}", *extra, *overrides]
        )
        run = out / name / "pretrain"
        print(f"== pre-training, text encoder {name}: {steps} steps into {run}")
        start = time.perf_counter()
        train(cfg, run, resume=True)
        timing = run / "timing.json"
        if not timing.exists():
            timing.write_text(json.dumps({"wall_s": time.perf_counter() - start}))
        inits[name] = run / "ckpt.pt"
    return inits


def run_tasks(
    inits: dict[str, Path], tasks: list[str], steps: dict[str, int], out: Path, overrides: list[str]
) -> dict[str, dict[str, dict]]:
    """Fine-tune and evaluate each init on each task under `out` (finished runs are reused);
    {task: {init name: result}}, kept in out/results.json."""
    saved = out / "results.json"
    # runs of other tasks from earlier invocations stay in the table
    results: dict[str, dict[str, dict]] = json.loads(saved.read_text()) if saved.exists() else {}
    for task in tasks:
        for name, init in inits.items():
            if finished(results, task, name, steps[task], out / name / task, Path(init)):
                print(f"== {task}: {name}, {steps[task]} steps: reusing {out / name / task}")
                continue
            print(f"== {task}: {name} from {init}, {steps[task]} steps")
            run = run_task(init, task, steps[task], out / name / task, overrides)
            results.setdefault(task, {})[name] = run
            saved.write_text(json.dumps(results, indent=2) + "\n")
    return results


def compare_text_inits(
    args: argparse.Namespace,
    tasks: list[str],
    steps: dict[str, int],
    out: Path,
    overrides: list[str],
) -> None:
    """--text-init: per seed (out/seed<N>, train.seed=N), pre-train both text encoders and
    fine-tune them on `tasks`; each seed's tables, then the mean and spread over the seeds."""
    seeds = [int(s) for s in args.seeds.split(",") if s]
    per_seed = []
    for seed in seeds:
        print(f"==== seed {seed}")
        seed_out = out / f"seed{seed}"
        given = [*overrides, f"train.seed={seed}"]
        inits = pretrain_text_inits(args.text_init, args.pretrain_steps, seed_out, given)
        results = run_tasks(inits, tasks, steps, seed_out, [*given, *TEXT_INIT_FINETUNE])
        print_tables({t: results[t] for t in tasks}, inits)
        per_seed.append(results)
    print_seed_summary(per_seed, tasks, ("scratch", args.text_init), seeds)


def std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def print_seed_summary(
    per_seed: list[dict], tasks: list[str], models: tuple[str, ...], seeds: list[int]
) -> None:
    """Mean ± std (sample std, as benchmarks/methods.py; 0 for one seed) of each metric over the
    seeds, and the difference of the second column from the first, flagged when it is inside
    the larger spread."""
    print()
    print(f"mean ± std over {len(seeds)} seed(s) {seeds}:")
    print(f"| task | metric | {' | '.join(models)} | difference |")
    print("|" + " --- |" * (3 + len(models)))
    for task in tasks:
        for key in ROWS[task]:
            values = {m: [r[task][m]["metrics"][key] for r in per_seed] for m in models}
            cells = [f"{statistics.fmean(v):.1f} ± {std(v):.1f}" for v in values.values()]
            diff = [b - a for a, b in zip(values[models[0]], values[models[1]], strict=True)]
            spread = max(std(v) for v in values.values())
            mean = statistics.fmean(diff)
            note = (
                " (1 seed)" if len(seeds) == 1 else " (inside the spread)" * (abs(mean) <= spread)
            )
            print(f"| {task} | {key} | {' | '.join(cells)} | {mean:+.1f}{note} |")


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
        state = load_checkpoint(init)
        pre, val = state["progress"]["step"], state.get("metrics", {})
        recall = f"; val R@1 t2i {val['t2i_r1']:.1f} i2t {val['i2t_r1']:.1f}" if val else ""
        print(f"{name}: fine-tuned from {init} ({pre} pre-training steps{recall})")
    print()
    models = tuple(inits)
    names = " | ".join(COLUMN_NAMES.get(m, m) for m in models)
    header = f"| task | metric | trivial baseline | {names} |"
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
            cells = [f"{runs[m]['metrics'][key]:.1f}" if m in runs else "-" for m in models]
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
    times = " | ".join(f"{COLUMN_NAMES.get(m, m)} fine-tune+val s" for m in models)
    print(f"| task | steps | test examples | {times} |")
    print("|" + " --- |" * (3 + len(models)))
    for task, runs in results.items():
        if not set(models) & set(runs):
            continue
        first = next(iter(runs.values()))
        cells = [f"{runs[m]['finetune_s']:.0f}" if m in runs else "-" for m in models]
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
    parser.add_argument(
        "--tasks", help="comma-separated subset (default: all; --text-init: retrieval,vqa)"
    )
    parser.add_argument(
        "--text-init", help="compare the scratch BERT with this model.text.pretrained (minilm)"
    )
    parser.add_argument(
        "--pretrain-steps", type=int, default=100, help="--text-init: pre-training steps"
    )
    parser.add_argument(
        "--seeds", default="0", help="--text-init: comma-separated train.seed values (0,1,2)"
    )
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
    default_tasks = "retrieval,vqa" if args.text_init else ",".join(TASKS)
    tasks = [t for t in (args.tasks or default_tasks).split(",") if t]
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise SystemExit(f"error: unknown task(s) {sorted(unknown)}; choose from {TASKS}")
    steps = task_steps(args.steps, args.task_steps)
    out = Path(args.out)
    overrides = list(args.overrides)
    if args.text_init:
        compare_text_inits(args, tasks, steps, out, overrides)
        return
    inits = {"hybrid": Path(args.init)}
    if args.ann_init and Path(args.ann_init).is_file():
        inits["ann_only"] = Path(args.ann_init)
    elif args.ann_init:
        print(f"no ANN-only checkpoint at {args.ann_init}: that column stays empty")
    results = run_tasks(inits, tasks, steps, out, overrides)
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
