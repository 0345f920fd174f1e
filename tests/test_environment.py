"""The run record names the CPU that chose the kernels, not only torch's dispatch level."""
import hashlib

from tclap.environment import cpu_description, environment, files_digest

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile avx512_vnni
processor\t: 1
model name\t: Other
flags\t\t: fpu
"""


def test_cpu_model_and_onednn_flags_come_from_the_first_processor(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert cpu_description(path) == {"cpu_model": "Intel(R) Xeon(R) Platinum 8480+",
                                     "cpu_flags": ["amx_bf16", "amx_tile", "avx512_bf16", "avx512_vnni"]}


def test_no_cpuinfo_gives_an_empty_description_not_an_error(tmp_path):
    assert cpu_description(tmp_path / "missing") == {"cpu_model": None, "cpu_flags": []}


def test_environment_carries_the_cpu_description():
    record = environment()
    assert {"cpu_model", "cpu_flags", "cpu_capability", "torch_threads"} <= set(record)


def test_files_digest_follows_names_sizes_and_bytes_not_the_folder(tmp_path):
    for root in ("a", "b"):
        (tmp_path / root / "audio").mkdir(parents=True)
        (tmp_path / root / "audio" / "x.wav").write_bytes(b"\x00\x01")
        (tmp_path / root / "manifest.jsonl").write_text("{}\n")
    files = ["manifest.jsonl", "audio/x.wav"]  # given in any order, hashed in sorted order of the names
    expected = hashlib.sha256(b"audio/x.wav\x002\x00" + b"\x00\x01" + b"manifest.jsonl\x003\x00" + b"{}\n").hexdigest()
    assert files_digest(tmp_path / "a", [tmp_path / "a" / f for f in files]) == expected
    assert files_digest(tmp_path / "b", [tmp_path / "b" / f for f in reversed(files)]) == expected
    (tmp_path / "b" / "audio" / "x.wav").write_bytes(b"\x00\x02")
    assert files_digest(tmp_path / "b", [tmp_path / "b" / f for f in files]) != expected
    assert files_digest(tmp_path / "a", [tmp_path / "a" / "gone.wav"]) is None  # unreadable: no digest, no error
