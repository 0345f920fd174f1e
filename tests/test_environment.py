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
