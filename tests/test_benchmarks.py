"""AudioTime test captions: read as order requests with reference spans, for `tclap generate` and `tclap order`."""
from __future__ import annotations

import json

import pytest

from audioldm_cond.generation import Prompt, read_prompts
from tclap.data.benchmarks import TimedCaption, read_audiotime
from tclap.errors import DataError

AUDIOTIME = {  # the format of AudioTime's test/ordering_caption.json and timestamp_caption.json
    "syn_1": {"event": {"Jackhammer": [[7.66, 10.0]], "Electric shaver, electric razor": [[1.056, 5.158]]},
              "caption": "An electric shaver buzzes, followed by a jackhammer pounding."},
    "syn_2": {"caption": "A dog barks twice, then a bell rings.",
              "event": {"Bell": [[6.0, 7.5]], "Dog": [[2.5, 3.0], [0.5, 1.0]]}},
}


def write(path, items) -> str:
    path.write_text(json.dumps(items))
    return str(path)


def test_audiotime_captions_ask_for_their_events_in_order_of_first_onset(tmp_path):
    captions = read_audiotime(write(tmp_path / "ordering_caption.json", AUDIOTIME))
    assert captions == [
        TimedCaption("syn_1", AUDIOTIME["syn_1"]["caption"], ["Electric shaver, electric razor", "Jackhammer"],
                     {"Jackhammer": [(7.66, 10.0)], "Electric shaver, electric razor": [(1.056, 5.158)]}),
        TimedCaption("syn_2", AUDIOTIME["syn_2"]["caption"], ["Dog", "Bell"],
                     {"Bell": [(6.0, 7.5)], "Dog": [(0.5, 1.0), (2.5, 3.0)]})]
    # tclap generate reads the same file: ids become file names, the events come with each prompt
    assert read_prompts(tmp_path / "ordering_caption.json")[1] == Prompt("syn_2", AUDIOTIME["syn_2"]["caption"],
                                                                         ["Dog", "Bell"])


@pytest.mark.parametrize("items, message", [
    ([1, 2], "expected a non-empty JSON object"),
    ({"../x": AUDIOTIME["syn_1"]}, r"'\.\./x'.*"),
    ({"a": {"event": AUDIOTIME["syn_1"]["event"]}}, "'a': empty or missing `caption`"),
    ({"a": {"caption": "x", "event": {}}}, "'a': `event` must be a non-empty object"),
    ({"a": {"caption": "x", "event": {"Dog": [[3.0, 1.0]]}}}, r"'a': event 'Dog' span \[3.0, 1.0\] is not"),
    ({"a": {"caption": "x", "event": {"Dog": [["1", 2]]}}}, "'a': event 'Dog' span"),
    ({"a": {"caption": "x", "event": {"Dog": []}}}, "'a': event 'Dog' needs a non-empty list"),
])
def test_bad_audiotime_files_name_the_file_and_id(tmp_path, items, message):
    path = write(tmp_path / "t.json", items)
    with pytest.raises(DataError, match=f"t.json.*{message}"):
        read_audiotime(path)


def test_a_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(DataError, match="t.json: not JSON"):
        read_audiotime(tmp_path / "t.json")
