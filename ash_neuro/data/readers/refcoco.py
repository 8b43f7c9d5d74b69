r"""RefCOCO / RefCOCO+ / RefCOCOg referring expressions, with COCO instance boxes as candidates.

The refs ship as a Python pickle (`refs(unc).p`); unpickling runs code, so this reader never
opens pickles. Convert the file once, in your own environment, from the copy you trust:

    python -c "import json, pickle, sys; json.dump(pickle.load(sys.stdin.buffer), sys.stdout)" \
        < 'refs(unc).p' > 'refs(unc).json'

(refcocog: `refs(umd).p` to `refs(umd).json`; if Python reports a UnicodeDecodeError for these
Python 2 pickles, give pickle.load `encoding='latin1'`.) The JSON is a list of refs:

    [{"ref_id": 0, "image_id": 581857, "ann_id": 1719310, "split": "train",
      "sentences": [{"sent": "the lady with the blue shirt", ...}, ...], ...}, ...]

and `instances.json` (beside it in the download) is COCO's: images[] (id, file_name, width,
height) and annotations[] (id, image_id, bbox [x, y, w, h] in pixels). Each sentence of a ref
of the split is one GroundingRecord: its candidates are every instance box of the image (in
annotation order), normalised to x0, y0, x1, y1 in [0, 1] (and mapped like the image by the
letterbox transform); its target is the ref's ann_id. `max_candidates` is the most candidates
of any record (GroundingDataset's max_instances must be at least that). `object_tags(image)`
gives the same instances with their category names (instances.json's categories[]), the
object tags of CMAL's anchor points.

Layout under root (override with annotations=, instances=, images=): refs(unc).json
(refcocog: refs(umd).json), instances.json, images (COCO train2014) in root/train2014. Splits
are those of the refs file (unc: train, val, testA, testB; umd: train, val, test).
"""

from __future__ import annotations

from pathlib import Path

from ash_neuro.data.readers.coco_instances import InstanceIndex, object_tags
from ash_neuro.data.readers.common import FileSource, ReaderError, ReadOptions, read_json
from ash_neuro.data.records import GroundingRecord

REFS_WHAT = (
    "the refs converted to JSON (a list of ref_id, image_id, ann_id, split, sentences[]; "
    "see ash_neuro/data/readers/refcoco.py for the one-line conversion)"
)


class RefCOCO(FileSource):
    kind = "refcoco"
    default_refs = "refs(unc).json"
    has_object_tags = True  # every instance of an image with its category name

    def __init__(
        self,
        root: str | Path,
        split: str,
        options: ReadOptions,
        *,
        annotations: str | Path | None = None,
        instances: str | Path | None = None,
        images: str | Path | None = None,
    ) -> None:
        super().__init__(root, split, options)
        refs_path = self.path(annotations, self.default_refs)
        image_dir = self.path(images, "train2014")
        refs = read_json(refs_path, REFS_WHAT)
        if not isinstance(refs, list):
            raise ReaderError(f"{refs_path}: expected a JSON list; it should be {REFS_WHAT}")
        splits = {
            r["split"] for r in refs if isinstance(r, dict) and isinstance(r.get("split"), str)
        }
        if split not in splits:
            found = ", ".join(sorted(splits)) or "none"
            raise ReaderError(f"{refs_path} has no refs of split {split!r}; it has {found}")
        index = InstanceIndex(self.path(instances, "instances.json"), options)

        for row, ref in enumerate(refs):
            where = f"{refs_path} [{row}]"
            got = self.fields(ref, where, split=str)
            if got is None or got[0] != split:
                continue
            got = self.fields(ref, where, image_id=int, ann_id=int, sentences=list)
            if got is None:
                continue
            image_id, ann_id, sentences = got
            texts = self.sentences(sentences, "sent", where)
            if not texts:
                continue
            image = index.candidates(image_id)
            if isinstance(image, str):
                self.report("malformed", where, image)
                continue
            if ann_id not in image.ann_ids:
                detail = f"ann_id {ann_id} is not an instance of image {image_id} in {index.path}"
                self.report("malformed", where, detail)
                continue
            if (found := self.image_indices([image_dir / image.file_name], where)) is None:
                continue
            target = image.ann_ids.index(ann_id)
            self._object_tags[found[0]] = object_tags(image)
            self._grounding.extend(
                GroundingRecord(found[0], text, target, image.boxes) for text in texts
            )
        self.max_candidates = max((len(r.boxes) for r in self._grounding), default=0)


class RefCOCOPlus(RefCOCO):
    kind = "refcoco+"


class RefCOCOg(RefCOCO):
    kind = "refcocog"
    default_refs = "refs(umd).json"
