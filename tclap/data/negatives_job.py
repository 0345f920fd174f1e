"""Run a negative-caption backend (rule or LLM) over a caption file, resumably.

Output is JSONL, one record per caption: `id`, `audio`, `caption`, `negative` (null when the
caption has no sequence to reverse), `reason`, `backend`. A rerun skips ids already written, so a
killed LLM job loses at most one batch.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from tclap.data.captions import CaptionRow
from tclap.data.mixup import resume_jsonl
from tclap.data.negatives import Negative

Backend = Callable[[list[str]], list[Negative]]


def write_negatives(rows: Sequence[CaptionRow], backend: Backend, out: str | Path,
                    batch_size: int = 32) -> Counter:
    """Append a record per caption not yet in `out`; returns counts ("swapped", reason kinds, "reused").

    Args:
        rows: captions to process.
        backend: callable mapping a list of captions to one `Negative` each, with a `name`.
        out: JSONL output file (created, or resumed).
        batch_size: captions per backend call.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done_ids = {r["id"] for r in resume_jsonl(out)}
    counts = Counter(reused=len(done_ids))
    todo = [r for r in rows if r.id not in done_ids]
    name = getattr(backend, "name", type(backend).__name__)
    with open(out, "a", encoding="utf-8") as handle, tqdm(total=len(todo), desc="negatives", leave=False) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            results = backend([r.caption for r in batch])
            for row, result in zip(batch, results, strict=True):
                counts["swapped" if result.negative else f"not swapped: {str(result.reason).split(':')[0]}"] += 1
                handle.write(json.dumps({"id": row.id, "audio": row.audio, "caption": row.caption,
                                         "negative": result.negative, "reason": result.reason,
                                         "backend": name}) + "\n")
            handle.flush()
            bar.update(len(batch))
    return counts
