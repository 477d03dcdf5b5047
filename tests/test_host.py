"""Which host a latency belongs to: one CPU model name can hide generations that time a model 10x apart."""

from pathlib import Path

from explorer.measure.host import KERNEL_FLAGS, Host, parse_cpu_flags, parse_generation

HOSTS = Path(__file__).parent / "data" / "hosts"
AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 1\n"


def _host(cpuinfo: str, flags_file: str, cpu: str) -> Host:
    flags = parse_cpu_flags(f"flags\t\t: {(HOSTS / flags_file).read_text()}")
    return Host(cpu, 2, "x86_64", "Linux", parse_generation(cpuinfo), tuple(sorted(flags & KERNEL_FLAGS)))


def test_the_host_id_tells_cpu_generations_apart_and_is_stable():
    amd = _host(AMD, "amd-epyc-flags.txt", "AMD EPYC")
    assert amd.generation == "25/1/1" and amd.features == ("avx", "avx2", "f16c", "fma")
    assert amd.id == _host(AMD, "amd-epyc-flags.txt", "AMD EPYC").id  # the same machine: the same id
    # the same model name with AVX-512 (another EPYC generation) is another host
    other = Host("AMD EPYC", 2, "x86_64", "Linux", "25/17/1", amd.features + ("avx512_vnni", "avx512f"))
    assert other.id != amd.id and other.label == "AMD EPYC (25/17/1, 2 cores)"
    intel = _host("cpu family\t: 6\nmodel\t\t: 143\nstepping\t: 8\n", "intel-xeon-avx512-amx-2core/cpuinfo-flags.txt",
                  "Intel(R) Xeon(R) Processor")
    assert {"amx_int8", "avx512_fp16", "avx512_vnni"} <= set(intel.features) and intel.id != amd.id
    arm = parse_generation("CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd0b\n")
    assert arm == "0x41/0xd0b"  # a Cortex-A76
    assert parse_generation("") == ""
