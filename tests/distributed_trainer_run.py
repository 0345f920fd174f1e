"""Run under `accelerate launch`: the toy regression of test_trainer through the shared Trainer.

argv[1] is the output dir, argv[2] the step at which every process dies ("none" to finish); the run
resumes from the latest checkpoint when one exists.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from test_trainer import config, parts  # noqa: E402

from tclap.launch import finish  # noqa: E402
from tclap.trainer import Trainer  # noqa: E402

if __name__ == "__main__":
    fail_at = None if sys.argv[2] == "none" else int(sys.argv[2])
    Trainer(config(Path(sys.argv[1])), parts(fail_at=fail_at)).fit(resume="latest")
    finish()  # as train_tclap.py leaves
