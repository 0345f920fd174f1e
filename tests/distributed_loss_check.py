"""Run under `accelerate launch --cpu --num_processes N`: loss and gradients of one fixed global batch.

Each process takes its contiguous slice of the global batch through a DDP-wrapped toy encoder;
TclapLoss gathers embeddings across processes. Rank 0 writes the process-mean loss and the
(DDP-averaged) gradients to the JSON file given as argv[1].
"""
import json
import sys

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from tclap.launch import finish
from tclap.losses import LossConfig, TclapLoss

GLOBAL_BATCH, DIM = 8, 6


class Toy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.audio, self.text = torch.nn.Linear(DIM, 4), torch.nn.Linear(DIM, 4)
        self.logit_scale_a = torch.nn.Parameter(torch.tensor(2.0))
        self.logit_scale_t = torch.nn.Parameter(torch.tensor(2.5))

    def forward(self, audio, text, neg_text, neg_audio):
        return (F.normalize(self.audio(torch.cat([audio, neg_audio])), dim=-1),
                F.normalize(self.text(torch.cat([text, neg_text])), dim=-1))


def main() -> None:
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(Toy())
    g = torch.Generator().manual_seed(1)
    audio, text = torch.randn(GLOBAL_BATCH, DIM, generator=g), torch.randn(GLOBAL_BATCH, DIM, generator=g)
    neg_text, neg_audio = torch.randn(GLOBAL_BATCH, DIM, generator=g), torch.randn(GLOBAL_BATCH, DIM, generator=g)
    per = GLOBAL_BATCH // accelerator.num_processes
    rows = slice(accelerator.process_index * per, (accelerator.process_index + 1) * per)
    local = torch.arange(per)
    has_neg = local[local % 2 == 0]  # every other sample has a negative caption and a negative audio
    a, t = model(audio[rows], text[rows], neg_text[rows][has_neg], neg_audio[rows][has_neg])
    toy = accelerator.unwrap_model(model)
    losses = TclapLoss(LossConfig(temporal_weight=0.5))(
        a[:per], t[:per], toy.logit_scale_a, toy.logit_scale_t, t[per:], has_neg, a[per:], has_neg)
    loss = sum(losses.values())
    accelerator.backward(loss)
    mean = {k: float(accelerator.reduce(v.detach(), "mean")) for k, v in losses.items()}
    if accelerator.is_main_process:
        grads = {n: p.grad.tolist() for n, p in toy.named_parameters()}
        with open(sys.argv[1], "w") as handle:
            json.dump({"losses": mean, "grads": grads, "processes": accelerator.num_processes}, handle)
    accelerator.wait_for_everyone()
    accelerator.end_training()  # destroys the gloo group, as the Trainer does


if __name__ == "__main__":
    main()
    finish()  # as the training scripts leave: no teardown abort fails the launch
