"""Pre-training losses, one file each, as pure functions of tensors: ITC, ITM (hard negatives
from ITC), MLM, spatio-temporal spike contrast, STUA and the spike-rate regulariser.
`ash_neuro.objective` wires them to a model and a batch."""
