"""The shared accelerate loop on a toy regression: resume, retention, NaN stop, EMA, logging."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tclap.errors import DataError
from tclap.trainer import LaunchMismatch, TrainConfig, Trainer, TrainerParts, TrainingDiverged, checkpoints


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))

    def forward(self, x):
        return self.net(x)


def data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    dataset = TensorDataset(x, x.sum(1, keepdim=True))
    return DataLoader(dataset, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(1))


def parts(fail_at: int | None = None, nan_at: int | None = None, kill_saving: str | None = None) -> TrainerParts:
    calls = {"n": 0}

    def loss(model, batch):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise KeyboardInterrupt("simulated kill")
        x, y = batch
        value = torch.nn.functional.mse_loss(model(x), y)
        if calls["n"] == nan_at:
            value = value * float("nan")
        return {"mse_loss": value}

    def export(model, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        if path.parent.name.startswith(f"{kill_saving}."):
            (path / "weights.pt").write_bytes(b"half a file")
            raise KeyboardInterrupt("simulated kill while saving")
        torch.save(model.state_dict(), path / "weights.pt")

    def load(model, path: Path):
        model.load_state_dict(torch.load(path / "weights.pt"))

    return TrainerParts(Toy(), data(), loss, export, load)


def config(tmp_path, **kw) -> TrainConfig:
    return TrainConfig(**{"output_dir": str(tmp_path), "steps": 12, "batch_size": 4, "lr": 1e-2, "warmup_steps": 3,
                          "checkpoint_every": 4, "keep_checkpoints": 2, "log_every": 2, "validate_every": 100, **kw})


def final_weights(path: Path) -> dict:
    return torch.load(path / "weights.pt")


def test_resume_after_a_crash_reaches_the_same_weights(tmp_path):
    straight = Trainer(config(tmp_path / "a"), parts()).fit()
    # crash during step 7 (after checkpoint-4), then resume: optimizer, scheduler, RNG and data position restored
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(tmp_path / "b"), parts(fail_at=7)).fit()
    assert [p.name for p in checkpoints(tmp_path / "b")] == ["checkpoint-4"]
    resumed = Trainer(config(tmp_path / "b"), parts()).fit(resume="latest")
    for name, value in final_weights(straight).items():
        assert torch.equal(value, final_weights(resumed)[name]), name


def test_a_kill_while_saving_leaves_the_previous_checkpoint_as_latest(tmp_path):
    straight = Trainer(config(tmp_path / "a"), parts()).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(tmp_path / "b"), parts(kill_saving="checkpoint-8")).fit()
    assert (tmp_path / "b" / "checkpoint-8.partial").is_dir()
    assert [p.name for p in checkpoints(tmp_path / "b")] == ["checkpoint-4"]
    resumed = Trainer(config(tmp_path / "b"), parts()).fit(resume="latest")
    for name, value in final_weights(straight).items():
        assert torch.equal(value, final_weights(resumed)[name]), name
    assert not list((tmp_path / "b").glob("*.partial"))


def test_checkpoints_are_pruned_and_hold_a_save_pretrained_folder(tmp_path):
    Trainer(config(tmp_path), parts()).fit()
    kept = checkpoints(tmp_path)
    assert [p.name for p in kept] == ["checkpoint-8", "checkpoint-12"]
    assert (kept[-1] / "model" / "weights.pt").exists() and not list(kept[-1].glob("model*.safetensors"))


def test_a_nan_loss_stops_with_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"non-finite loss at step 6 .*checkpoint-4"):
        Trainer(config(tmp_path), parts(nan_at=6)).fit()
    assert [p.name for p in checkpoints(tmp_path)] == ["checkpoint-4"]


def test_metrics_csv_and_linear_warmup(tmp_path):
    Trainer(config(tmp_path, warmup_steps=6), parts()).fit()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    lr = {int(r["step"]): float(r["value"]) for r in rows if r["name"] == "lr"}
    # after s updates the factor is min(1, (s + 1) / 6)
    assert lr[2] == pytest.approx(1e-2 * 3 / 6) and lr[4] == pytest.approx(1e-2 * 5 / 6)
    assert lr[6] == lr[12] == pytest.approx(1e-2)
    assert {r["name"] for r in rows} >= {"loss", "mse_loss", "lr"}


def test_ema_is_what_gets_exported(tmp_path):
    final = Trainer(config(tmp_path, ema_decay=0.9), parts()).fit()
    live = final_weights(checkpoints(tmp_path)[-1] / "model")
    ema = final_weights(final)
    assert any(not torch.equal(live[k], ema[k]) for k in live)


def test_the_exported_ema_keeps_the_live_batchnorm_statistics(tmp_path):
    toy = parts()
    torch.manual_seed(0)
    toy.model.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
    start = {k: v.clone() for k, v in toy.model.state_dict().items()}
    final = Trainer(config(tmp_path, ema_decay=0.9), toy).fit()
    live, ema = final_weights(checkpoints(tmp_path)[-1] / "model"), final_weights(final)
    for name in ("net.1.running_mean", "net.1.running_var", "net.1.num_batches_tracked"):
        assert torch.equal(ema[name], live[name]) and not torch.equal(ema[name], start[name]), name
    assert not torch.equal(ema["net.0.weight"], live["net.0.weight"])  # the weights are still averaged


def test_a_spent_time_budget_stops_at_a_log_step_and_resume_goes_on_exactly(tmp_path):
    straight = Trainer(config(tmp_path / "a"), parts()).fit()
    ticks = iter(range(0, 10_000, 60))  # a clock that moves one minute per reading
    final = Trainer(config(tmp_path / "b", max_minutes=2.5), parts(), clock=lambda: next(ticks)).fit()
    # read at the start (0) and at steps 2, 4, 6 (60, 120, 180 s): 180 s > 150 s stops at step 6
    assert [p.name for p in checkpoints(tmp_path / "b")] == ["checkpoint-4", "checkpoint-6"]
    assert (final / "weights.pt").exists()
    resumed = Trainer(config(tmp_path / "b"), parts()).fit(resume="latest")
    for name, value in final_weights(straight).items():
        assert torch.equal(value, final_weights(resumed)[name]), name


def test_processes_that_accelerate_did_not_join_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; this process runs alone
    with pytest.raises(LaunchMismatch, match="ACCELERATE_USE_CPU=1"):
        Trainer(config(tmp_path), parts())


def test_mixed_precision_no_survives_yaml_and_others_are_refused():
    """YAML 1.1 reads `--set train.mixed_precision=no` as false; accelerate would refuse that."""
    from tclap.config import read_run_config
    from tclap.train import RunConfig

    root = Path(__file__).resolve().parent.parent
    cfg = read_run_config(RunConfig, root / "configs" / "tclap" / "offline.yaml", ["train.mixed_precision=no"])
    assert cfg.train.mixed_precision == "no"
    with pytest.raises(DataError, match="train.mixed_precision: 'fp32' is not one of no, fp16, bf16"):
        TrainConfig(mixed_precision="fp32")


def test_a_model_that_arrives_in_eval_mode_trains_in_train_mode(tmp_path):
    """from_pretrained returns eval mode; the loop must not train with dropout off."""
    seen = []

    def loss(model, batch):
        seen.append(model.training and model.net[1].training)
        x, y = batch
        return {"mse_loss": torch.nn.functional.mse_loss(model(x), y)}

    toy = parts()
    toy.model.eval()
    Trainer(config(tmp_path, steps=3), TrainerParts(toy.model, toy.dataloader, loss, toy.export, toy.load)).fit()
    assert seen == [True, True, True]


@pytest.mark.parametrize("name", ["steps", "validate_every", "checkpoint_every", "log_every", "grad_accum",
                                  "keep_checkpoints"])
@pytest.mark.parametrize("value", [0, 2.5, None])
def test_counts_that_are_not_whole_numbers_from_one_are_refused_by_name(name, value):
    """They divide the step count (0 stopped a run at step 1 with a ZeroDivisionError) or slice the
    checkpoint list (keep_checkpoints 0 kept them all)."""
    with pytest.raises(DataError, match=f"train.{name}: a whole number >= 1, got {value!r}"):
        TrainConfig(**{name: value})


def test_lr_multipliers_scale_the_step_of_the_matching_parameters(tmp_path):
    """Adam's first update moves every parameter with a gradient by lr (m / sqrt(v) = sign(g))."""
    start = {k: v.clone() for k, v in Toy().state_dict().items()}
    final = Trainer(config(tmp_path, steps=1, warmup_steps=1, lr_multipliers={"net.2": 10.0, "net.2.bias": 3.0}),
                    parts()).fit()
    moved = {k: (final_weights(final)[k] - start[k]).abs().max().item() for k in start}
    assert moved["net.0.weight"] == pytest.approx(1e-2, rel=1e-3)
    assert moved["net.2.weight"] == pytest.approx(1e-1, rel=1e-3)
    assert moved["net.2.bias"] == pytest.approx(3e-2, rel=1e-3)  # the longest matching key wins


@pytest.mark.parametrize("multipliers, message", [({"decoder": 10.0}, "'decoder' matches no trainable parameter"),
                                                  ({"net.0": 0.0}, "the factor of 'net.0' must be > 0")])
def test_bad_lr_multipliers_are_refused(tmp_path, multipliers, message):
    with pytest.raises(DataError, match=message):
        Trainer(config(tmp_path, lr_multipliers=multipliers), parts())
