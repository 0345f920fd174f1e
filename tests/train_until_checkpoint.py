"""`train_tclap.py` that halts for good right after writing checkpoint-N, so a test can kill it there.

    python tests/train_until_checkpoint.py N --config CONFIG ...

After the save it writes `halted-at-N` next to the checkpoint and sleeps until killed: the kill
point is deterministic, whatever the machine's speed.
"""
from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

from tclap import trainer

ROOT = Path(__file__).resolve().parent.parent
halt_at = int(sys.argv.pop(1))
save_checkpoint = trainer.Trainer.save_checkpoint


def save_then_halt(self: trainer.Trainer) -> Path:
    path = save_checkpoint(self)
    if self.step == halt_at:
        (path.parent / f"halted-at-{halt_at}").touch()
        while True:
            time.sleep(1)
    return path


trainer.Trainer.save_checkpoint = save_then_halt
sys.argv[0] = str(ROOT / "train_tclap.py")
runpy.run_path(sys.argv[0], run_name="__main__")
