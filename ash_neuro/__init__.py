"""ash-neuro: hybrid ANN/SNN vision-language networks and their neuromorphic deployment."""

import warnings

__version__ = "0.1.0"

# norse 1.1.0 calls torch.jit.script when it is imported, which torch 2.14 answers with a
# FutureWarning on every command; there is nothing a user can act on, so keep it off stderr.
warnings.filterwarnings(
    "ignore", message="`torch.jit.script` is deprecated", category=FutureWarning
)
