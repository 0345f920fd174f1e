"""The `accelerate` training loop both trainers share (T-CLAP and AudioLDM).

The model-specific parts come in as callables; this module owns the rest, written once:
gradient accumulation, mixed precision, clipping, warm-up schedule, optional EMA, logging to
TensorBoard and `metrics.csv`, `checkpoint-N` folders (accelerate state; the model itself as a
`save_pretrained` sub-folder through save/load hooks) with a retention limit, exact `--resume latest`
(optimizer, scheduler, RNG, data position), periodic validation, and a stop with a clear message on
a non-finite loss that keeps the last good checkpoint, and an optional wall-clock budget
(`max_minutes`: stop at a log step past it, checkpoint, export; `--resume latest` goes on exactly).
"""
from __future__ import annotations

import copy
import csv
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from torch import Tensor, nn
from tqdm import tqdm

from tclap.errors import DataError


MIXED_PRECISION = ("no", "fp16", "bf16")


@dataclass
class TrainConfig:
    output_dir: str = "runs/train"
    steps: int = 1000                 # optimizer steps
    batch_size: int = 32              # per process, per accumulation step
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100           # linear warm-up, then constant
    grad_accum: int = 1
    mixed_precision: str = "no"       # "no", "fp16", "bf16"
    max_grad_norm: float = 1.0
    ema_decay: float = 0.0            # > 0 keeps an EMA of the trained weights, used for export
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    validate_every: int = 500
    log_every: int = 10
    num_workers: int = 0
    seed: int = 0
    max_minutes: float | None = None  # wall-clock budget of one invocation; None: run to `steps`
    # parameter-name substring -> lr factor (the longest matching key wins), as mmcv's paramwise custom_keys
    lr_multipliers: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mixed_precision is False:  # YAML 1.1 reads a bare `no` as false
            self.mixed_precision = "no"
        if self.mixed_precision not in MIXED_PRECISION:
            raise DataError(f"train.mixed_precision: {self.mixed_precision!r} is not one of {', '.join(MIXED_PRECISION)}")
        for name in ("steps", "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints", "validate_every",
                     "log_every"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise DataError(f"train.{name}: a whole number >= 1, got {value!r}")


class TrainingDiverged(RuntimeError):
    """A non-finite loss; the message names the step and the last good checkpoint."""


class LaunchMismatch(RuntimeError):
    """More processes were launched than accelerate joined into one run (they would train apart)."""


@dataclass
class TrainerParts:
    """What a trainer supplies. `loss` maps a batch to named `*_loss` terms (summed for backward)."""

    model: nn.Module                                    # the trained module (parameters with requires_grad)
    dataloader: torch.utils.data.DataLoader
    loss: Callable[[nn.Module, dict], dict[str, Tensor]]
    export: Callable[[nn.Module, Path], None]           # write a save_pretrained directory
    load: Callable[[nn.Module, Path], None]             # read one back into the module
    validate: Callable[[nn.Module], dict[str, float]] | None = None


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete `checkpoint-N` folders, oldest first; a save cut short leaves only `checkpoint-N.partial`."""
    done = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-", 1)[1].isdigit()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def param_groups(model: nn.Module, lr: float, multipliers: dict[str, float]) -> list[dict]:
    """AdamW groups: trainable parameters grouped by the lr factor of the longest key found in their name.

    Raises:
        DataError: a key of `multipliers` names no trainable parameter, or a factor is not > 0.
    """
    keys = sorted(multipliers, key=len, reverse=True)
    for key in keys:
        if not multipliers[key] > 0:
            raise DataError(f"train.lr_multipliers: the factor of {key!r} must be > 0, not {multipliers[key]!r}")
    groups: dict[float, list] = {}
    used = set()
    for name, param in model.named_parameters():
        if param.requires_grad:
            key = next((k for k in keys if k in name), None)
            used.add(key)
            groups.setdefault(multipliers[key] if key else 1.0, []).append(param)
    unused = [k for k in keys if k not in used]
    if unused:
        raise DataError(f"train.lr_multipliers: {unused[0]!r} matches no trainable parameter")
    ordered = sorted(groups.items(), key=lambda item: item[0] != 1.0)  # the plain group first: its lr is logged
    return [{"params": params, "lr": lr * factor} for factor, params in ordered]


class Trainer:
    """Runs `TrainerParts` under `TrainConfig`; see the module docstring."""

    def __init__(self, cfg: TrainConfig, parts: TrainerParts, clock: Callable[[], float] = time.monotonic):
        self.cfg, self.parts, self.clock = cfg, parts, clock
        self.output_dir = Path(cfg.output_dir)
        self.accelerator = Accelerator(
            gradient_accumulation_steps=cfg.grad_accum, mixed_precision=cfg.mixed_precision, log_with="tensorboard",
            project_config=ProjectConfiguration(project_dir=str(self.output_dir), logging_dir=str(self.output_dir / "logs")))
        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if launched != self.accelerator.num_processes:
            raise LaunchMismatch(
                f"{launched} processes were launched but accelerate runs {self.accelerator.num_processes}: each would "
                f"train alone on all the data. Without a GPU, launch with ACCELERATE_USE_CPU=1 "
                f"(e.g. ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes {launched} ...)")
        set_seed(cfg.seed)
        optimizer = torch.optim.AdamW(param_groups(parts.model, cfg.lr, cfg.lr_multipliers),
                                      lr=cfg.lr, weight_decay=cfg.weight_decay)
        # accelerate steps a prepared scheduler once per process per update, hence the factor.
        warmup = max(1, cfg.warmup_steps * self.accelerator.num_processes)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        self.ema = copy.deepcopy(parts.model).requires_grad_(False) if cfg.ema_decay else None
        self.model, self.optimizer, self.dataloader, self.scheduler = self.accelerator.prepare(
            parts.model, optimizer, parts.dataloader, scheduler)
        if self.ema is not None:
            self.ema.to(self.accelerator.device)
            self.accelerator.register_for_checkpointing(self.ema)
        self.accelerator.register_save_state_pre_hook(self._save_hook)
        self.accelerator.register_load_state_pre_hook(self._load_hook)
        self.step = 0

    # --- checkpoints -------------------------------------------------------------------------
    def _save_hook(self, models: list, weights: list, output_dir: str) -> None:
        """Write the trained module as a save_pretrained folder instead of accelerate's raw weights."""
        if self.accelerator.is_main_process:
            self.parts.export(self.accelerator.unwrap_model(self.model), Path(output_dir) / "model")
        if weights:
            weights.pop(0)  # the trained module is first in prepare(); the EMA copy stays a raw state dict

    def _load_hook(self, models: list, input_dir: str) -> None:
        self.parts.load(self.accelerator.unwrap_model(self.model), Path(input_dir) / "model")
        models.pop(0)

    def save_checkpoint(self) -> Path:
        """Write into `checkpoint-N.partial`, then rename: a kill mid-save never leaves a broken `checkpoint-N`."""
        path = self.output_dir / f"checkpoint-{self.step}"
        partial = path.with_name(path.name + ".partial")
        main = self.accelerator.is_main_process
        if main:
            for stale in self.output_dir.glob("checkpoint-*.partial"):
                shutil.rmtree(stale)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(partial))
        self.accelerator.wait_for_everyone()
        if main:
            partial.rename(path)
            for old in checkpoints(self.output_dir)[:-self.cfg.keep_checkpoints]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()
        return path

    def resume(self, which: str | None) -> None:
        """`which`: None (fresh), "latest", or a checkpoint folder."""
        if which is None:
            return
        path = Path(which) if which != "latest" else (checkpoints(self.output_dir) or [None])[-1]
        if path is None:
            self.accelerator.print(f"no checkpoint in {self.output_dir}; starting from scratch")
            return
        self.accelerator.load_state(str(path))
        self.step = int(Path(path).name.split("-")[1])
        self.accelerator.print(f"resumed from {path} at step {self.step}")

    # --- the loop ----------------------------------------------------------------------------
    def _batches(self):
        """Endless batches; epochs reshuffle through set_epoch, and a resumed run skips what was seen."""
        per_epoch = len(self.dataloader)
        micro = self.step * self.cfg.grad_accum
        epoch, skip = divmod(micro, per_epoch)
        while True:
            for holder in (self.dataloader, getattr(self.dataloader, "batch_sampler", None),
                           getattr(self.dataloader, "dataset", None)):
                if hasattr(holder, "set_epoch"):
                    holder.set_epoch(epoch)
            loader = self.accelerator.skip_first_batches(self.dataloader, skip) if skip else self.dataloader
            yield from loader
            epoch, skip = epoch + 1, 0

    def _update_ema(self) -> None:
        """EMA of the parameters; buffers (BatchNorm's running statistics) are copied, as timm's
        ModelEmaV3 does, so the exported model normalises with the statistics its weights were
        trained with, not the starting model's."""
        decay, live = self.cfg.ema_decay, self.accelerator.unwrap_model(self.model)
        with torch.no_grad():
            for ema, param in zip(self.ema.parameters(), live.parameters()):
                ema.lerp_(param.detach(), 1 - decay)
            for ema, buffer in zip(self.ema.buffers(), live.buffers()):
                ema.copy_(buffer)

    def fit(self, resume: str | None = None) -> Path:
        """Train to `cfg.steps`; returns the exported final model directory (`output_dir/final`)."""
        self.resume(resume)
        self.accelerator.init_trackers("tclap")
        bar = tqdm(total=self.cfg.steps, initial=self.step, desc="train", disable=not self.accelerator.is_main_process)
        batches, running, start = self._batches(), {}, self.clock()
        # from_pretrained (transformers, diffusers) returns a model in eval mode: BatchNorm would normalise
        # with its loaded statistics and dropout would be off for the whole run
        self.model.train()
        while self.step < self.cfg.steps:
            for _ in range(self.cfg.grad_accum):
                with self.accelerator.accumulate(self.model):
                    terms = self.parts.loss(self.model, next(batches))
                    loss = sum(terms.values())
                    self._check_finite(loss, terms)
                    self.accelerator.backward(loss)
                    if self.accelerator.sync_gradients:
                        self.accelerator.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.optimizer.zero_grad()
                for name, value in {"loss": loss, **terms}.items():
                    running[name] = running.get(name, 0.0) + float(self.accelerator.reduce(value.detach(), "mean"))
            self.step += 1
            if self.ema is not None:
                self._update_ema()
            bar.update(1)
            self._after_step(running)
            if self.step % self.cfg.log_every == 0 and self._out_of_time(start):
                self.accelerator.print(f"train.max_minutes ({self.cfg.max_minutes}) spent at step {self.step}: "
                                       "stopping here (--resume latest goes on)")
                if self.step % self.cfg.checkpoint_every:
                    self.save_checkpoint()
                break
        bar.close()
        self.accelerator.wait_for_everyone()
        final = self.output_dir / "final"
        if self.accelerator.is_main_process:
            self.parts.export(self.ema or self.accelerator.unwrap_model(self.model), final)
        self.accelerator.end_training()
        return final

    def _out_of_time(self, start: float) -> bool:
        """Whether `max_minutes` has passed since `start`; every process takes the main process's answer."""
        if self.cfg.max_minutes is None:
            return False
        late = torch.tensor(float(self.clock() - start > self.cfg.max_minutes * 60), device=self.accelerator.device)
        return bool(self.accelerator.reduce(late, "max"))

    def _after_step(self, running: dict) -> None:
        cfg, n = self.cfg, self.cfg.grad_accum
        if self.step % cfg.log_every == 0 or self.step == cfg.steps:
            window = cfg.log_every if self.step % cfg.log_every == 0 else self.step % cfg.log_every
            row = {k: v / (window * n) for k, v in running.items()}
            row["lr"] = self.scheduler.get_last_lr()[0]
            self.log(row)
            running.clear()
        if self.parts.validate and (self.step % cfg.validate_every == 0 or self.step == cfg.steps):
            self.log({f"val/{k}": v for k, v in self._validate().items()})
        if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
            self.save_checkpoint()

    def _validate(self) -> dict[str, float]:
        model = self.accelerator.unwrap_model(self.model)
        if self.ema is None:
            return self.parts.validate(model)
        stored = copy.deepcopy(model.state_dict())  # store -> copy EMA in -> validate -> restore
        model.load_state_dict(self.ema.state_dict())
        try:
            return self.parts.validate(model)
        finally:
            model.load_state_dict(stored)

    def log(self, values: dict[str, float]) -> None:
        self.accelerator.log(values, step=self.step)
        if not self.accelerator.is_main_process:
            return
        path = self.output_dir / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", "name", "value"])
            writer.writerows([self.step, k, f"{v:.6g}"] for k, v in values.items())

    def _check_finite(self, loss: Tensor, terms: dict[str, Tensor]) -> None:
        if math.isfinite(float(loss.detach())):
            return
        last = checkpoints(self.output_dir)
        raise TrainingDiverged(
            f"non-finite loss at step {self.step + 1} ({', '.join(f'{k}={float(v.detach()):.4g}' for k, v in terms.items())}); "
            f"nothing was updated. Last good checkpoint: {last[-1] if last else 'none yet'} "
            f"(resume with --resume latest, e.g. with a lower lr)")
