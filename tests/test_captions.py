"""Caption readers: the three layouts, audio-name templates, and every error path."""
from __future__ import annotations

import pytest

from tclap.data.captions import CaptionRow, read_captions
from tclap.errors import DataError

AUDIOCAPS = (
    "audiocap_id,youtube_id,start_time,caption\n"
    "91139,r1nicOVtvkQ,130,\"A woman talks, then a dog barks.\"\n"
    "58146,UDGBjjwyaqE,20, Rain falls while thunder rumbles \n"
)
CLOTHO = (
    "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
    "rain.wav,Rain falls.,Heavy rain.,Rain on a roof.,A storm.,Water drips.\n"
)


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_audiocaps_rows(tmp_path):
    path = write(tmp_path, "ac.csv", AUDIOCAPS)
    assert read_captions(path) == [
        CaptionRow("91139", "r1nicOVtvkQ_130.wav", "A woman talks, then a dog barks.", f"{path}:2"),
        CaptionRow("58146", "UDGBjjwyaqE_20.wav", "Rain falls while thunder rumbles", f"{path}:3"),
    ]


def test_clotho_rows_one_per_caption_column(tmp_path):
    path = write(tmp_path, "clotho.csv", CLOTHO)
    rows = read_captions(path)
    assert [r.id for r in rows] == [f"rain.wav#{k}" for k in range(1, 6)]
    assert [r.caption for r in rows] == ["Rain falls.", "Heavy rain.", "Rain on a roof.", "A storm.", "Water drips."]
    assert {r.audio for r in rows} == {"rain.wav"}
    assert {r.source for r in rows} == {f"{path}:2"}


def test_plain_text_skips_blank_lines_and_numbers_by_file_line(tmp_path):
    path = write(tmp_path, "caps.txt", "  a dog barks \n\n\na man speaks\n   \n")
    assert read_captions(path) == [CaptionRow("line1", "", "a dog barks", f"{path}:1"),
                                   CaptionRow("line4", "", "a man speaks", f"{path}:4")]


def test_audio_name_template_and_bom_and_blank_csv_rows(tmp_path):
    path = write(tmp_path, "ac.csv", "\ufeff" + AUDIOCAPS.replace("\n58146", "\n\n58146"))
    rows = read_captions(path, audio_name="{youtube_id}/{start_time}.flac")
    assert [r.audio for r in rows] == ["r1nicOVtvkQ/130.flac", "UDGBjjwyaqE/20.flac"]
    assert rows[1].source == f"{path}:4"


def test_quoted_multiline_caption_reports_its_first_line(tmp_path):
    path = write(tmp_path, "ac.csv", "audiocap_id,youtube_id,start_time,caption\n"
                                     "1,a,0,\"two\nlines\"\n2,b,0,\n")
    with pytest.raises(DataError, match=rf"{path}:4: empty caption in column 'caption'"):
        read_captions(path)


@pytest.mark.parametrize("name, text, audio_name, message", [
    ("x.csv", "id,text\n1,hi\n", None,
     r"x\.csv:1: header is neither .* closest is AudioCaps, missing column\(s\) audiocap_id, youtube_id, "
     r"start_time, caption"),
    ("x.csv", "file_name,caption_1,caption_2\nf.wav,a,b\n", None,
     r"x\.csv:1: .*closest is Clotho, missing column\(s\) caption_3, caption_4, caption_5"),
    ("x.csv", "", None, r"x\.csv:1: header is neither .*found nothing"),
    ("x.csv", CLOTHO.replace("Heavy rain.", " "), None, r"x\.csv:2: empty caption in column 'caption_2'"),
    ("x.csv", AUDIOCAPS + "7,yt,5\n", None, r"x\.csv:4: expected 4 fields .* got 3"),
    ("x.csv", AUDIOCAPS + "91139,yt,5,again\n", None, r"x\.csv:4: duplicate id '91139' \(first at .*x\.csv:2\)"),
    ("x.csv", CLOTHO + CLOTHO.splitlines()[1] + "\n", None, r"x\.csv:3: duplicate id 'rain\.wav#1'"),
    ("x.csv", AUDIOCAPS + ",yt,5,a sound\n", None, r"x\.csv:4: empty 'audiocap_id'"),
    ("x.csv", AUDIOCAPS, "{ytid}.wav", r"x\.csv: audio_name template '\{ytid\}\.wav' uses unknown column 'ytid'"),
    ("x.csv", AUDIOCAPS, "{}.wav", r"x\.csv: audio_name template .* unknown column ''"),
    ("x.csv", AUDIOCAPS, "{youtube_id", r"x\.csv: bad audio_name template"),
    ("x.csv", AUDIOCAPS, "{start_time:d}", r"x\.csv:2: audio_name template .* fails on this row"),
    ("x.csv", AUDIOCAPS + '3,yt,5,"unclosed\n', None, r"x\.csv:\d+: malformed CSV"),
    ("x.txt", "a dog barks\n", "{x}", r"x\.txt: audio_name applies to CSV files only"),
    ("x.txt", "\n \n", None, r"x\.txt: no captions"),
    ("x.csv", "audiocap_id,youtube_id,start_time,caption\n", None, r"x\.csv: no captions"),
    ("x.jsonl", '{"caption": "a dog barks"}\n{"id": 3}\n', None, r"x\.jsonl:2: empty or missing `caption`"),
    ("x.jsonl", '{"id": "a", "caption": "x"}\n{"id": "a", "caption": "y"}\n', None,
     r"x\.jsonl:2: duplicate id 'a' \(first at .*x\.jsonl:1\)"),
    ("x.jsonl", '["a dog barks"]\n', None, r"x\.jsonl:1: expected a JSON object"),
    ("x.json", '{"caption": "a dog barks"}\n', None, r"x\.json: unknown caption file type '\.json'; captions come as \.csv, \.jsonl, \.txt"),
    ("x", "a dog barks\n", None, r"unknown caption file type '\(none\)'"),
])
def test_errors_name_file_and_row(tmp_path, name, text, audio_name, message):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError, match=message):
        read_captions(path, audio_name=audio_name)


def test_jsonl_captions_are_read_by_field_not_as_raw_text(tmp_path):
    path = write(tmp_path, "caps.jsonl", '{"caption": " A dog barks, then a man speaks. "}\n\n'
                                         '{"id": "c7", "audio": "c7.wav", "caption": "Rain falls"}\n')
    assert read_captions(path) == [
        CaptionRow("line1", "", "A dog barks, then a man speaks.", f"{path}:1"),
        CaptionRow("c7", "c7.wav", "Rain falls", f"{path}:3")]


def test_undecodable_file_names_line(tmp_path):
    path = write(tmp_path, "caps.txt", b"a dog barks\n\xff\xfe oops\n")
    with pytest.raises(DataError, match=rf"{path}:2: not valid UTF-8"):
        read_captions(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nothere.csv: caption file not found"):
        read_captions(tmp_path / "nothere.csv")
