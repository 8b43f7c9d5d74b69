"""Write a Norse network as a verified NIR graph and its contract beside it.

Every export is verified before it replaces the output file: the written file is read back with
`nir.read`, rebuilt in PyTorch by Norse's own importer and run on the same sample currents as
the original network, whose spike trains must agree exactly; the NumPy reference of NIR's
equations must agree on at least `REFERENCE_MIN_AGREEMENT` of them (verify.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import torch

from ash_neuro.atomic import replace_atomically
from ash_neuro.nir_export import verify
from ash_neuro.nir_export.contract import (
    METADATA_KEY,
    EncoderContract,
    ExportVerificationError,
    NIRExportError,
    sidecar_path,
    sidecar_text,
)
from ash_neuro.nir_export.mapping import (
    chain_order,
    float32_notes,
    network_to_nir,
    node_types,
    without_first_affine,
)


@dataclass
class ExportReport:
    path: Path
    sidecar: Path
    node_types: list[str]
    agreement: dict[str, float]  # Norse vs norse.from_nir of the file read back
    reference_agreement: dict[str, float]  # Norse vs the NumPy reading of NIR's equations
    output_spike_rate: float
    samples: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def export_network(
    network: torch.nn.Module,
    contract: EncoderContract,
    path: str | Path,
    currents: torch.Tensor,
    run_original: Callable[[torch.Tensor], torch.Tensor] | None = None,
    samples: str = "sample currents",
) -> ExportReport:
    """Write `network` as a NIR graph at `path` and its contract beside it, verified first.

    `currents` (T, rows, in_dim) drive the verification; `run_original` maps them to output
    spikes (T, rows, out_dim) the way the model does (default: `run_network(network, ...)`).
    With `contract.first_layer` "host" the graph leaves out the first Affine and `currents`
    are what the host sends, that Affine's output (T, rows, layer_sizes[0]), which
    `run_original` then maps to the output spikes.
    Both files are written to temporaries beside their targets, the graph is read back and
    checked, and only then are they moved into place; a failed check leaves nothing behind.
    """
    start = time.perf_counter()
    path = Path(path)
    notes = float32_notes(network)
    graph = network_to_nir(network, {METADATA_KEY: contract.to_json()})
    if contract.first_layer == "host":
        graph = without_first_affine(graph)
    _check_contract(graph, contract)
    if run_original is None and contract.first_layer == "host":
        raise NIRExportError("a graph without its first Affine needs run_original")
    run_original = run_original or (lambda x: verify.run_network(network, x))
    original = verify.record_spikes(network, lambda: run_original(currents))

    sidecar = sidecar_path(path)
    if path.is_dir():
        raise NIRExportError(f"cannot write {path}: it is a directory; pass a file name")
    _write(lambda: path.parent.mkdir(parents=True, exist_ok=True), path)
    # The sidecar's block encloses the graph's, so the graph moves into place first.
    with _replacing(sidecar) as sidecar_tmp, _replacing(path) as graph_tmp:
        _write(lambda: nir.write(graph_tmp, graph), path)
        _write(lambda: sidecar_tmp.write_text(sidecar_text(contract, graph_tmp) + "\n"), sidecar)
        back = nir.read(graph_tmp)
        if EncoderContract.from_json(back.metadata.get(METADATA_KEY, "")) != contract:
            raise ExportVerificationError("the contract read back from the graph differs")
        agreement = verify.spike_agreement(
            original, verify.run_from_nir(back, currents, contract.dt)
        )
        reference = verify.spike_agreement(
            original, verify.run_reference(back, currents.cpu().numpy(), contract.dt)
        )
        if agreement["output"] < 1.0 or agreement["all"] < 1.0:
            raise ExportVerificationError(
                f"norse.from_nir of the written graph agrees with the encoder on "
                f"{100 * agreement['output']:.4f}% of output spikes "
                f"({100 * agreement['all']:.4f}% over all layers), not 100%; export discarded"
            )
        if reference["all"] < verify.REFERENCE_MIN_AGREEMENT:
            raise ExportVerificationError(
                f"NIR's LIF equations integrated with dt={contract.dt} agree with the encoder on "
                f"only {100 * reference['all']:.4f}% of spikes; the graph does not mean what "
                "Norse computes; export discarded"
            )
    rate = float(original["output"].mean())
    if rate == 0:
        notes.append("the samples produced no output spikes, so the agreement is vacuous")
    return ExportReport(
        path=path,
        sidecar=sidecar,
        node_types=node_types(graph),
        agreement=agreement,
        reference_agreement=reference,
        output_spike_rate=rate,
        samples=samples,
        seconds=time.perf_counter() - start,
        notes=notes,
    )


def _check_contract(graph: nir.NIRGraph, contract: EncoderContract) -> None:
    """The contract describes this graph: node names and every width."""
    for name, kind in ((contract.input_node, nir.Input), (contract.output_node, nir.Output)):
        if not isinstance(graph.nodes.get(name), kind):
            raise NIRExportError(f"the contract names {name!r}, which is no {kind.__name__} node")
    lifs = tuple(
        int(graph.nodes[n].v_threshold.size)
        for n in chain_order(graph)
        if isinstance(graph.nodes[n], nir.LIF)
    )
    found = (
        int(graph.nodes[contract.input_node].input_type["input"][0]),
        int(graph.nodes[contract.output_node].output_type["output"][0]),
        lifs,
    )
    if found != (contract.graph_in_dim, contract.out_dim, contract.layer_sizes):
        raise NIRExportError(
            f"the contract's graph input, out_dim, layer_sizes {contract.graph_in_dim}, "
            f"{contract.out_dim}, {contract.layer_sizes} (first layer on the "
            f"{contract.first_layer}) do not match the graph's {found[0]}, {found[1]}, {found[2]}"
        )


@contextmanager
def _replacing(target: Path) -> Iterator[Path]:
    """`replace_atomically`, its failures (making or moving the temporary) one line naming
    `target`; the writes inside go through `_write`, which names their own file."""
    try:
        with replace_atomically(target) as temporary:
            yield temporary
    except OSError as exc:
        raise NIRExportError(f"cannot write {target}: {exc.strerror or exc}") from None


def _write(action: Callable[[], Any], path: Path) -> None:
    try:
        action()
    except OSError as exc:
        raise NIRExportError(f"cannot write {path}: {exc.strerror or exc}") from None
