"""The benchmark suite (bench/harness.py): which workloads it finds, and how it sums them up."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from harness import FAMILIES, WORKLOADS, geomean, workloads
from netspec.cli import main


def test_the_suite_runs_the_issues_workloads_and_families_found_anywhere_under_specs(tmp_path):
    for name in ("vgg_mini", "lenet5"):
        (tmp_path / f"{name}.ns").write_text("input 4\nfc 2\n")
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "efficientnet_b0.ns").write_text("input 4\nfc 2\n")
    found = [(path.relative_to(tmp_path).as_posix(), batch) for path, batch in workloads(tmp_path)]
    assert found == [("vgg_mini.ns", 32), ("lenet5.ns", 256),
                     ("zoo/efficientnet_b0.ns", 1), ("zoo/efficientnet_b0.ns", 16)]
    assert ("resnet18", 1) in WORKLOADS and ("mobilenet_v2", 16) in WORKLOADS
    assert set(FAMILIES) == {"efficientnet_b0", "convnext_tiny", "shufflenet_v2_x1_0"}


def test_geometric_mean():
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)   # √(2·8)
    assert geomean([0.5, 0.5, 0.5]) == pytest.approx(0.5)


def test_bench_needs_a_spec_and_names_the_suite(capsys):
    assert main(["bench"]) == 2
    assert "bench/suite.py" in capsys.readouterr().err


def test_the_check_speed_spec_has_exactly_the_layers_asked_for():
    import netspec
    from harness import generated_spec
    for n in (2, 3, 57):   # `conv ... relu` statements count twice
        assert len(netspec.parse(generated_spec(n)).layers) == n


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/stat"), reason="reads /proc")
def test_the_loaded_machine_is_made_of_busy_processes_that_end_with_it():
    import time

    from harness import busy

    def cpu_ticks(pid: int) -> int:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])   # utime + stime

    with busy(2) as spinners:
        assert len(spinners) == 2
        time.sleep(0.5)
        assert all(s.poll() is None and cpu_ticks(s.pid) > 0 for s in spinners)
    assert all(s.poll() is not None for s in spinners)


def test_a_backend_times_in_a_process_of_its_own_and_ends_with_the_suite(tmp_path):
    from pathlib import Path

    from harness import Backend, numpy_peer
    specs = Path(__file__).resolve().parent.parent / "specs"
    broken = tmp_path / "broken.ns"
    broken.write_text("input 8x8x3\nconv 9x9 x4\n")   # a kernel larger than its input
    backend = Backend(numpy_peer)
    try:
        assert backend.process.pid != __import__("os").getpid()
        seconds = backend.time(specs / "lenet5.ns", 2, 3, 1)
        assert len(seconds) == 3 and all(s > 0 for s in seconds)
        assert isinstance(backend.time(broken, 1, 1, 0), str)   # said, not raised
    finally:
        backend.close()
    assert not backend.process.is_alive()
