"""ash-neuro: hybrid ANN/SNN vision-language networks and their neuromorphic deployment."""

__version__ = "0.1.0"
