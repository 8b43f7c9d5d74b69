"""Annotations of one image (or image pair): sample programs, label them, say them in English.

Each generator samples candidate programs (`ash_neuro/data/programs.py`), labels every
candidate by evaluating it on the scene graph, and picks one so that labels are balanced.
One module per annotation family, each with its `make_*` generator and its label vocabulary:

- `captions.py`: captions (`make_captions`, `CAPTION_TEMPLATES`)
- `questions.py`: VQA questions (`make_questions`, `VQA_FAMILIES`, `ANSWERS`)
- `entailment.py`: entailment hypotheses (`make_hypotheses`, `VE_LABELS`)
- `referring.py`: referring expressions (`make_referring_expressions`, `REFEXP_FAMILIES`)
- `statements.py`: NLVR statements about an image pair (`make_statements`, `NLVR_OPS`)
- `phrasing.py`: the words and description helpers the families share
"""
