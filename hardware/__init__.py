"""The Lava side of the deployment harness: NIR graphs on Lava's Loihi 2 simulator.

Runs in its own environment (`.venv-lava`, Python 3.10, `make lava-env`); the main
environment reaches it only through `hardware.runner`, which imports neither Lava nor this
package's other modules except io.py (and the record it stores, quantisation_report.py). The
parts, each swappable:

- graph.py     NIR file -> `LavaPlan` (plan.py): nested graphs flattened, populations,
               connections (recurrent ones too), latencies
- linear_maps.py  NIR's linear nodes as connection matrices (C-order; convolutions sparse)
- mapping.py   NIR neuron equations -> Lava LIF parameters, per scheme (the derivation)
- quantize.py  floating-point plan -> Loihi integers (fixed_pt; Loihi's or netx's profile)
- quantisation_report.py  what fixed_pt rounded, as a record (standard library; both envs)
- lava_network.py  plan -> lava-nc processes, streamed over all samples; sim or loihi2
- lava_models/     our LIF processes and models (rest, per-neuron decays, voltage readout)
- netx.py          plan -> lava-dl netx HDF5 (export/to_netx.py), and netx's own run
- supervise.py     watchdog and clean kill of Lava's worker processes
- io.py            in.h5 and out.h5 (NumPy and h5py; both environments), `LavaResult`
- simulate.py      the command line; runner.py the main-environment caller
"""
