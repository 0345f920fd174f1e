"""The evaluation report files: metrics.json, the markdown table, the margin histograms."""
from __future__ import annotations

import json

import torch

from tclap.eval_report import markdown_table, write_report

RESULTS = {"base": {"tclassify_t2a": 51.25, "n_items": 10, "zeroshot_esc50_acc": 80.04,
                    "zeroshot_esc50_acc_fold1": 75.0, "zeroshot_esc50_margin": 0.21},
           "tclap": {"tclassify_t2a": 87.96, "compa_group": 33.333, "n_items": 10}}


def test_table_has_a_row_per_model_and_a_column_per_percentage():  # the fold score and the margin stay out
    assert markdown_table(RESULTS) == (
        "| model | tclassify_t2a | zeroshot_esc50_acc | compa_group |\n"
        "|---|---|---|---|\n"
        "| base | 51.2 | 80.0 | - |\n"
        "| tclap | 88.0 | - | 33.3 |\n")


def test_write_report_writes_json_table_and_png(tmp_path):
    margins = {"base": {"T2A": torch.tensor([0.1, -0.2, 0.05])},
               "tclap": {"T2A": torch.tensor([0.3, 0.2]), "A2T": torch.tensor([0.1])}}
    table = write_report(RESULTS, margins, tmp_path / "report")
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == RESULTS
    assert (tmp_path / "report" / "table.md").read_text() == table == markdown_table(RESULTS)
    assert (tmp_path / "report" / "margins.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_margins_no_figure(tmp_path):
    write_report(RESULTS, {"base": {}, "tclap": {}}, tmp_path)
    assert not (tmp_path / "margins.png").exists() and (tmp_path / "table.md").exists()
