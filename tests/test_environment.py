"""The run record names the CPU that chose the kernels, not only torch's dispatch level."""
from tclap.environment import cpu_description, environment

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


def test_folder_digest_follows_content_and_relative_paths_not_the_folder(tmp_path):
    import hashlib

    from tclap.environment import folder_digest

    for root in ("a", "b"):
        (tmp_path / root / "audio").mkdir(parents=True)
        (tmp_path / root / "audio" / "x.wav").write_bytes(b"\x00\x01")
        (tmp_path / root / "manifest.jsonl").write_text("{}\n")
        (tmp_path / root / "settings.json").write_text(f'{{"library": "{tmp_path / root}"}}')
    expected = hashlib.sha256(b"audio/x.wav\0" + b"\x00\x01" + b"manifest.jsonl\0" + b"{}\n").hexdigest()
    assert folder_digest(tmp_path / "a", skip=("settings.json",)) == expected
    assert folder_digest(tmp_path / "b", skip=("settings.json",)) == expected
    assert folder_digest(tmp_path / "a") != folder_digest(tmp_path / "b")  # the absolute path differs
    (tmp_path / "b" / "audio" / "x.wav").write_bytes(b"\x00\x02")
    assert folder_digest(tmp_path / "b", skip=("settings.json",)) != expected
