"""The transformers internals autotrain_hydra.compat.transformers relies on: fails loudly when an upgrade moves them."""

import logging

from autotrain_hydra.compat import transformers as compat


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_new_heads_load_report_becomes_one_line_and_any_other_report_is_kept():
    from transformers import AutoModelForSequenceClassification

    from autotrain_hydra.models import tiny_model_dir

    said, records = [], Records()
    logging.getLogger(compat.REPORTER).addHandler(records)  # transformers' loggers do not propagate to the root
    try:
        with compat.new_head_said(("score",), said.append):
            AutoModelForSequenceClassification.from_pretrained(tiny_model_dir(), num_labels=1)
        assert said == [["score.weight"]]  # transformers still reports the new head, in the format we read
        assert not [m for m in records.messages if "LOAD REPORT" in m]
        with compat.new_head_said(("classifier",), said.append):  # another head's report: kept
            AutoModelForSequenceClassification.from_pretrained(tiny_model_dir(), num_labels=1)
    finally:
        logging.getLogger(compat.REPORTER).removeHandler(records)
    assert len(said) == 1 and [m for m in records.messages if "LOAD REPORT" in m]
    assert compat.report_rows("\x1b[1mX LOAD REPORT\x1b[0m\nKey | Status\nscore.weight | MISSING |\n"
                              "model.w | UNEXPECTED |") == [("score.weight", "MISSING"), ("model.w", "UNEXPECTED")]
