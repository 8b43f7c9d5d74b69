"""Semantic abstract encoder: the spiking half of an ASH-Net (Norse SNN, discrete latents).

The network (`SemanticAbstractEncoder.network`) is a Norse `SequentialState` of alternating
`torch.nn.Linear` and `norse.torch.LIFBoxCell` layers, in_dim -> hidden_dims... -> out_dim,
nothing else, so the NIR export (`ash_neuro.nir_export`) can carry it to Lava unchanged
(Linear -> NIR Affine, LIFBoxCell -> NIR LIF).

The tensor contract at the seam between PyTorch and the exported network:

    input   currents `(T, rows, in_dim)` float32, time axis first, one row per
            (image, visual token) pair (rows = batch * tokens), fed one step at a time;
    output  spikes `(T, rows, out_dim)` float32 in {0, 1};
    time    `T = time_steps` forward-Euler steps of `dt` seconds; every row starts from rest
            (v = v_leak = 0) at step 0; a spike reaches the next layer within the same step.

`encode_input` turns visual tokens into those currents with the configured coding
(`ash_neuro.models.spike_coding`, it stays in PyTorch); `run` is the network over time (what
the export runs outside PyTorch on identical inputs).

Registered as the spiking encoder "lif_stack"; "none" registers the absence of a spiking
encoder (the ANN-only network).

Gradients cross the spike threshold through Norse's SuperSpike surrogate (`method="super"`),
so losses on spikes train the visual concrete encoder beneath. Norse 1.1.0's SuperSpike
backward is 1 / (|v - v_th| + 1)^2 and ignores `alpha` (norse/torch/functional/superspike.py),
so `surrogate_alpha` is passed through for later Norse versions but has no effect with 1.1.0.
"""

from __future__ import annotations

import math

import torch
from norse.torch import LIFBoxCell, LIFBoxParameters, SequentialState
from norse.torch.functional.lif_box import LIFBoxFeedForwardState
from torch import Tensor, nn

from ash_neuro.config import SpikingConfig
from ash_neuro.models.outputs import SpikeTrains
from ash_neuro.models.spike_coding import SpikeCoding
from ash_neuro.registry import SPIKE_CODINGS, SPIKING_ENCODERS

# Spiking layers are initialised so that a unit-variance input drives the membrane to the
# one-step threshold current v_th / (dt * tau_mem_inv) with this standard deviation; with the
# default config, layers then fire at rates of about 0.15 to 0.25 before training. PyTorch's
# default Linear init (std ~ 0.58 / sqrt(fan_in) per unit input) would leave every layer after
# the first silent, since binary spikes at low rates carry far less power than the tokens.
INIT_DRIVE = 1.0
# The firing rate assumed for the spiking inputs of hidden layers when scaling their init.
INIT_INPUT_RATE = 0.2


def spiking_layer_names(network: SequentialState) -> list[str]:
    """Names of the LIF layers as reported in `layer_spikes` / spike rates: lif1, lif2, ..."""
    count = sum(isinstance(m, LIFBoxCell) for m in network)
    return [f"lif{i + 1}" for i in range(count)]


def build_network(dims: list[int], cfg: SpikingConfig, input_power: float) -> SequentialState:
    """Alternating `Linear(dims[i], dims[i+1])` and `LIFBoxCell` layers, scaled so they fire.

    `input_power` is the expected mean square of the first layer's input currents.
    """
    drive = cfg.v_th / (cfg.dt * cfg.tau_mem_inv)
    params = LIFBoxParameters(
        tau_mem_inv=torch.as_tensor(cfg.tau_mem_inv),
        v_leak=torch.as_tensor(0.0),
        v_th=torch.as_tensor(cfg.v_th),
        v_reset=torch.as_tensor(0.0),
        method="super",
        alpha=torch.as_tensor(cfg.surrogate_alpha),
    )
    layers: list[nn.Module] = []
    power = input_power
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        linear = nn.Linear(d_in, d_out)
        std = INIT_DRIVE * drive / math.sqrt(d_in * power)
        nn.init.normal_(linear.weight, std=std)
        nn.init.zeros_(linear.bias)
        layers += [linear, LIFBoxCell(params, dt=cfg.dt)]
        power = INIT_INPUT_RATE
    return SequentialState(*layers)


def row_mean(spikes: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of one layer's spikes `(T, rows, width)` over the rows where `mask` (any shape of
    `rows` elements, bool) is True; every row when None."""
    if mask is None:
        return spikes.mean()
    real = mask.reshape(1, -1, 1).to(spikes.dtype)
    return (spikes * real).sum() / (real.sum() * spikes.shape[0] * spikes.shape[2]).clamp(min=1)


def neuron_rates(spikes: Tensor, mask: Tensor | None = None) -> Tensor:
    """Each neuron's firing rate `(width,)`: one layer's spikes `(T, rows, width)` averaged over
    the steps and the rows where `mask` (`rows` elements, bool) is True; every row when None.
    Differentiable through surrogate spikes (the per-neuron rate regulariser)."""
    if mask is None:
        return spikes.mean(dim=(0, 1))
    real = mask.reshape(1, -1, 1).to(spikes.dtype)
    return (spikes * real).sum(dim=(0, 1)) / (real.sum() * spikes.shape[0]).clamp(min=1)


def silent_and_saturated(spikes: Tensor, mask: Tensor | None = None) -> tuple[float, float]:
    """The shares of one layer's neurons `(T, rows, width)` that never fire (on no real row, at
    no step) and that fire at every step of every real row: neurons that carry no information
    and, on a chip, cost energy (an update every step; a saturated one a spike every step)."""
    rates = neuron_rates(spikes.detach().float(), mask)
    return float((rates == 0).float().mean()), float((rates == 1).float().mean())


@SPIKING_ENCODERS.register("lif_stack")
class SemanticAbstractEncoder(nn.Module):
    """Visual tokens `(batch, tokens, in_dim)` -> `SpikeTrains` (spikes `(T, batch, tokens,
    out_dim)`)."""

    def __init__(self, cfg: SpikingConfig, in_dim: int) -> None:
        super().__init__()
        self.coding: SpikeCoding = SPIKE_CODINGS.get(cfg.encoding)
        self.time_steps = cfg.time_steps
        self.encoding = cfg.encoding
        self.input_gain = cfg.input_gain
        self.dt = cfg.dt
        self.in_dim = in_dim
        self.out_dim = cfg.out_dim
        # tokens leave the visual encoder layer-normalised (unit mean square)
        unit_power = self.coding.unit_power
        dims = [in_dim, *cfg.hidden_dims, cfg.out_dim]
        self.network = build_network(dims, cfg, unit_power * cfg.input_gain**2)
        self.layer_names = spiking_layer_names(self.network)

    def encode_input(self, features: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Token features `(batch, tokens, in_dim)` -> currents `(T, batch*tokens, in_dim)`;
        a random coding draws from `generator` (None: the global RNG)."""
        rows = features.reshape(-1, features.shape[-1]).float()
        return self.coding.encode(rows, self.time_steps, self.input_gain, generator)

    def run(self, currents: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """The network over time: currents `(T, rows, in_dim)` -> output spikes
        `(T, rows, out_dim)` and every LIF layer's spikes {`lif1`: `(T, rows, width)`, ...}.

        Step by step, layer by layer, with explicit states starting at rest: the same
        arithmetic as `network(currents[t], state)` step by step, so the export's reference
        run and this one agree bit for bit.
        """
        first = self.network[0]
        return self._simulate([first(step) for step in currents.unbind(0)])

    def first_layer_currents(self, currents: Tensor) -> Tensor:
        """What the first Linear makes of currents `(T, rows, in_dim)`: `(T, rows, width)`, the
        input of the first LIF layer (what the host sends when it runs that layer)."""
        first = self.network[0]
        return torch.stack([first(step) for step in currents.unbind(0)])

    def run_from_first_layer(self, drive: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """`run` from the first Linear's outputs `(T, rows, width)` on (`first_layer_currents`),
        as a graph whose first layer runs on the host computes."""
        return self._simulate(list(drive.unbind(0)))

    def _simulate(self, drive: list[Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """`run` from the first Linear's outputs on, one `(rows, width)` tensor per step."""
        states: list[LIFBoxFeedForwardState | None] = [None] * len(self.network)
        recorded: list[list[Tensor]] = [[] for _ in self.layer_names]
        for x in drive:
            spiking = 0
            for index, layer in enumerate(self.network):
                if index == 0:
                    continue
                if isinstance(layer, LIFBoxCell):
                    if states[index] is None:
                        rest = layer.p.v_leak.to(device=x.device, dtype=x.dtype)
                        states[index] = LIFBoxFeedForwardState(v=rest.expand_as(x))
                    x, states[index] = layer(x, states[index])
                    recorded[spiking].append(x)
                    spiking += 1
                else:
                    x = layer(x)
        layer_spikes = {name: torch.stack(steps) for name, steps in zip(self.layer_names, recorded)}
        return layer_spikes[self.layer_names[-1]], layer_spikes

    def forward(self, tokens: Tensor, mask: Tensor | None = None) -> SpikeTrains:
        """Tokens `(batch, n, in_dim)` -> spikes `(T, batch, n, out_dim)` in {0, 1}, every LIF
        layer's spikes and mean firing rate (differentiable, for the rate regulariser) over the
        real tokens of `mask` `(batch, n)` bool (None: all; padded rows run all the same, the
        contract's rows are batch * n).

        Equal, bit for bit, to `run(encode_input(tokens))`; a coding constant in time gives the
        first Linear the same input at every step, so it is applied once, not T times.
        """
        batch, n, _ = tokens.shape
        currents = self.encode_input(tokens)
        if self.coding.constant_in_time:
            spikes, layers = self._simulate([self.network[0](currents[0])] * self.time_steps)
        else:
            spikes, layers = self.run(currents)
        return SpikeTrains(
            spikes=spikes.reshape(self.time_steps, batch, n, self.out_dim),
            layers=layers,
            rates={name: row_mean(s, mask) for name, s in layers.items()},
        )


@SPIKING_ENCODERS.register("none")
def no_spiking_encoder(cfg: SpikingConfig, in_dim: int) -> None:
    """The ANN-only network: no spiking encoder, no spiking parameter."""
    return None
