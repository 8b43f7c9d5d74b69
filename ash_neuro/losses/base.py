"""What a pre-training loss is to the objective: a registered class built from `LossConfig`
that declares the model outputs it `needs` (`ASHNet.outputs`) and maps one batch's
`ForwardPass` (`ash_neuro.objective`) to a 0-d loss. The tensor arithmetic stays in pure
functions beside each class, tested on their own.

    @LOSSES.register("itc")
    class ImageTextContrastive(Loss):
        needs = frozenset({"image_embed", "text_embed"})
        def __call__(self, forward: ForwardPass) -> Tensor: ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from ash_neuro.config import LossConfig

if TYPE_CHECKING:
    from ash_neuro.objective import ForwardPass


class Loss:
    """Base of the registered losses: keeps the config; subclasses set `needs` and call."""

    needs: ClassVar[frozenset[str]] = frozenset()
    # what it reads from a batch beyond images and captions ("anchors": the batches come from
    # `ash_neuro.data.anchors.AnchorCollator`)
    batch_needs: ClassVar[frozenset[str]] = frozenset()
    # the config key of the optional component that produces what the loss needs (e.g.
    # "model.alignment.kind"): with a positive weight and no such component the objective stops
    # with a one-line error instead of skipping the loss; None: skipped silently (the spiking
    # losses of an ANN-only network)
    component: ClassVar[str | None] = None

    def __init__(self, cfg: LossConfig) -> None:
        self.cfg = cfg

    def __call__(self, forward: ForwardPass) -> Tensor:
        raise NotImplementedError
