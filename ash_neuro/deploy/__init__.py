"""The hybrid network with its spiking encoder on Lava's Loihi 2 simulator, against the same
network in PyTorch (`python -m ash_neuro.deploy ckpt.pt encoder.nir --task retrieval`).

    images ─► visual concrete encoder (PyTorch) ─► currents (the export contract's encoding)
        ├─► [first Affine in PyTorch when the contract's `first_layer` is "host"]
        │   ─► encoder.nir on Lava (.venv-lava, through hardware/runner.py: HDF5 in, HDF5 out;
        │      an image's token rows side by side, `--layout token_parallel`, or streamed)
        └─► the semantic abstract encoder in Norse (identical currents)
    each side's spikes ─► adapter, embeddings, fusion and heads (PyTorch) ─► the task's metrics

Reports, per Lava mode (floating_pt, fixed_pt): the task metric with Lava's spikes beside the
metric with Norse's, per-layer spike agreement (fraction of equal (step, row, neuron) entries),
firing rates, silent and saturated neuron shares, energy and latency estimates
(`ash_neuro.energy`: Loihi-class, 45 nm FP32 and INT8, beside the ANN-equivalent; the host's
first layer charged to the host) and the simulator's own wall time; written as JSON, Markdown
and PNG plots (with `--frontier`, where it sits against `benchmarks/efficiency.py`'s frontier).

Latency: Lava delivers each Dense hop one step late; hardware/simulate.py removes that
pipeline latency (it returns spikes aligned with their input step) and reports it per layer,
and the report states it beside the results.

Every task runs (`ash_neuro.tasks`: retrieval on any checkpoint, the others on one fine-tuned
for them): the first `--limit` images of the split go through the encoder on each side, and the
task's own evaluation reads them back through its encode hook, so the metrics beside each other
are computed by the same code as `python -m ash_neuro.evaluate`, over the examples whose images
are all among those `limit`.

The modules, one job each (importing this package imports none of them):

- `__main__.py`     the command line
- `run.py`          `deploy()`: loading (`ash_neuro.models.factory.load_model`), the checks
                    that a graph belongs to its checkpoint, the PyTorch ends of the encoder
                    (currents in, spikes re-joined to the ANN tokens), the orchestration
- `encoder_runs.py` the encoder in Norse and on Lava, their spike agreement, the energy of a
                    run's activity
- `records.py`      what a deployment measured, as typed records (report.json)
- `report.py`       report.json, report.md and the PNG plots
"""

from __future__ import annotations

from ash_neuro.errors import AshError


class DeployError(AshError):
    """A deployment that cannot run (a graph of another checkpoint, a bad option) or a record
    of one with a field out of range; one line naming the cause."""
