"""Networks: the visual concrete (ANN) and semantic abstract (SNN) encoders, text encoder,
adapter, fusion encoder and heads, each chosen by `kind:` from `ash_neuro.registry`, assembled
by `factory.build_model` into an `ASHNet`; `load_model(ckpt)` rebuilds one from a checkpoint."""

from typing import Any

__all__ = ["build_model", "build_task_model", "load_model"]


def __getattr__(name: str) -> Any:
    # the factory pulls in data and tokenizer code: import it only when asked for
    if name in __all__:
        from ash_neuro.models import factory

        return getattr(factory, name)
    raise AttributeError(name)
