"""Helpers of the Lava-side tests: graph builders, process and memory checks."""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SIMULATE = ROOT / "hardware" / "simulate.py"
DT = 1e-3


def processes_with_marker(marker: str) -> list[int]:
    """Live processes whose environment carries `marker` (all of a run's descendants do)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"ASH_TEST_MARKER={marker}".encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def shared_memory() -> set[str]:
    """Python multiprocessing's shared memory segments and semaphores now in /dev/shm."""
    return {p.name for pattern in ("psm_*", "sem.*") for p in Path("/dev/shm").glob(pattern)}


def lif(n, tau=0.01, **kw) -> nir.LIF:
    params = dict(r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
    params.update({k: np.broadcast_to(np.asarray(v, float), (n,)).copy() for k, v in kw.items()})
    return nir.LIF(tau=np.full(n, tau), **params)


def chain(input_shape, *nodes: tuple[str, nir.NIRNode], output_shape) -> nir.NIRGraph:
    """input -> nodes... -> output, by name."""
    names = ["input"] + [name for name, _ in nodes] + ["output"]
    graph_nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)})}
    graph_nodes.update(dict(nodes))
    graph_nodes["output"] = nir.Output(output_type={"output": np.array(output_shape)})
    edges = list(zip(names[:-1], names[1:]))
    return nir.NIRGraph(nodes=graph_nodes, edges=edges, type_check=False)
