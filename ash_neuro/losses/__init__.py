"""Pre-training losses, one file each: a pure tensor function (tested on closed-form examples)
and a registered `Loss` class (`base.py`) that declares the model outputs it needs. ITC, ITM
(hard negatives from ITC), MLM, spatio-temporal spike contrast, STUA and the spike-rate
regulariser; `vqa.py` is the VQA fine-tuning loss. `ash_neuro.objective` composes the
registered losses whose weight is non-zero."""
