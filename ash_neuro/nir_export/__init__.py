"""NIR export of the spiking semantic abstract encoder, and the contract that drives it.

Only the encoder's network over time (`SemanticAbstractEncoder.network`, a Norse
`SequentialState` of `torch.nn.Linear` and `LIFBoxCell` layers) becomes a NIR graph; the input
encoding stays in PyTorch and is described by an `EncoderContract`, stored in the graph's
metadata and in a JSON sidecar (`encoder.nir.json`) for readers without `nir` (the Lava side).

The parts, by job (import the one you need; this file imports none of them, so that the
torch-free ones load without torch):

- contract.py         `EncoderContract`, its schema and sidecar; standard library only
- mapping.py          Norse LIFBoxCell/Linear -> NIR LIF/Affine, the graph of a network
- reference.py        NIR's equations in NumPy: the oracle for the export and the Lava harness
- verify.py           the three readings (Norse, norse.from_nir, the reference), compared
- writer.py           `export_network`: write graph and sidecar, verify, then move into place
- from_checkpoint.py  `export_checkpoint`: the encoder of a checkpoint, verified on its images
"""
