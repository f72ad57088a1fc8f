"""The Ray executor on a local 2-CPU Ray instance: the numbers equal the serial executor's, a
run resumes exactly as a serial one, a cell that fails is recorded and the rest completes, and
bad clusters get clear errors. Skipped when Ray is not installed (``pip install -e ".[ray]"``)."""

from __future__ import annotations

import functools
import os
import sys
import time

import pytest

ray = pytest.importorskip("ray")

from ridgeline.core.errors import ConfigError  # noqa: E402
from ridgeline.core.interfaces.aligner import Alignment  # noqa: E402
from ridgeline.core.plugin_host.host import hookimpl, load_plugins  # noqa: E402
from ridgeline.core.results.readers import read_curves, read_failures, read_metadata  # noqa: E402
from ridgeline.core.results.tables import format_table, report_rows  # noqa: E402
from ridgeline.core.run.pipeline import Pipeline  # noqa: E402
from ridgeline.plugins.aligners.identity import IdentityAligner  # noqa: E402

DRIVER_PID = os.getpid()


@pytest.fixture(scope="module")
def local_ray(flaky):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # the plugins below and the flaky metric live in test modules, which workers cannot import:
    # ship them by value
    for module in (__name__, flaky.__module__):
        ray.cloudpickle.register_pickle_by_value(sys.modules[module])
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_config(sweep_config):
    """The run tests' sweep (seeds 0..2 paired with the first), the flaky metric and the error
    barrier at 4 points."""
    return functools.partial(sweep_config, metrics=[{"name": "flaky", "grid": 4},
                                                    {"name": "error_barrier", "grid": 4}])


def curves(path):
    return sorted((tuple(r[k] for k in ("pair", "aligner", "correction", "path", "metric", "index")),
                   r["loss"], r["error"]) for r in read_curves(path))


def test_ray_equals_serial_and_resumes_a_serial_run_exactly(tmp_path, local_ray, flaky, ray_config):
    whole = tmp_path / "serial"
    Pipeline(ray_config(whole), progress=False, host=flaky.host(10**6)).run()
    fresh = ray_config(tmp_path / "ray")
    on_ray = Pipeline(fresh, progress=False, executor="ray", host=flaky.host(10**6))
    on_ray.run()
    assert curves(fresh.output) == curves(whole / "results.h5")
    assert read_metadata(fresh.output)["complete"] and not on_ray.failures
    assert {f"train_seed{s}" for s in range(3)} <= set(on_ray.timings)

    # interrupted serially, finished on Ray: the same numbers, nothing redone
    cut = ray_config(tmp_path / "cut", checkpoint_dir=str(tmp_path / "ray" / "checkpoints"))
    with pytest.raises(flaky.Interrupt):
        Pipeline(cut, progress=False, host=flaky.host(9)).run()
    resumed = Pipeline(cut, progress=False, executor="ray", host=flaky.host(10**6))
    resumed.run()
    assert curves(cut.output) == curves(whole / "results.h5")
    assert not any(k.startswith("train") for k in resumed.timings)  # checkpoints reused
    assert "align_sw:seed0-seed1_identity" not in resumed.timings  # stored alignment read back

    again = Pipeline(cut, progress=False, executor="ray", host=flaky.host(0))
    again.run()  # finished: no cell runs (flaky(0) would fail any measuring)
    assert curves(cut.output) == curves(whole / "results.h5") and not again.failures


class BrokenAligner(IdentityAligner):
    """Fails on purpose."""

    def align(self, reference, other, spec, context) -> Alignment:
        raise RuntimeError("broken on purpose")


class DriverOnly:
    """Registers ``local_only`` only in the test process: a plugin missing on the workers."""

    @hookimpl
    def register_aligners(self, register):
        if os.getpid() == DRIVER_PID:
            register("local_only", IdentityAligner)


class Repaired:
    @hookimpl
    def register_aligners(self, register):
        register("broken", IdentityAligner)
        register("local_only", IdentityAligner)


class Broken:
    @hookimpl
    def register_aligners(self, register):
        register("broken", BrokenAligner)


def test_failed_cells_are_recorded_the_rest_completes_and_a_rerun_retries_them(
        tmp_path, local_ray, ray_config):
    config = ray_config(tmp_path, pairs=[{"name": "ab", "seeds": [0, 1]}],
                          aligners=["identity", "broken", "local_only"],
                          metrics=[{"name": "error_barrier", "grid": 3}])
    pipeline = Pipeline(config, progress=False, executor="ray",
                        host=load_plugins([("breaks", Broken()), ("local", DriverOnly())], autoload=False))
    pipeline.run()
    failures = {f["cell"]: f["error"] for f in read_failures(config.output)}
    assert set(failures) == {"align ab/broken", "measure ab/broken/none/linear", "align ab/local_only",
                             "measure ab/local_only/none/linear"}
    assert "RuntimeError: broken on purpose" in failures["align ab/broken"]
    assert "failed on Ray node" in failures["align ab/broken"]
    missing = failures["align ab/local_only"]
    assert "aligner 'local_only' (plugin 'local' on the driver) is not installed on Ray node" in missing
    assert set(pipeline.failures) == {("ab", cell) for cell in failures}
    assert not read_metadata(config.output)["complete"]
    rows = report_rows(config.output)
    assert [r["aligner"] for r in rows if "error" not in r] == ["identity"]  # the rest completed
    assert "failed: align ab/broken failed on Ray node" in format_table(rows)

    rerun = Pipeline(config, progress=False, executor="ray",
                     host=load_plugins([("fixed", Repaired())], autoload=False))
    rerun.run()
    assert not rerun.failures and read_failures(config.output) == []
    assert read_metadata(config.output)["complete"]
    assert {r["aligner"] for r in read_curves(config.output)} == {"identity", "broken", "local_only"}


def test_resources_no_node_has_are_refused_after_the_timeout(tmp_path, local_ray, ray_config):
    config = ray_config(tmp_path, executor={"name": "ray", "num_gpus": 1, "timeout_s": 1},
                          metrics=["error_barrier"], device="cpu")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"no node of the Ray cluster can run a cell asking for "
                                          r"num_cpus=1, num_gpus=1 \(nodes: .*GPU 0\); waited 1 s"):
        Pipeline(config, progress=False).run()
    assert time.perf_counter() - start < 30


def test_an_unreachable_cluster_is_a_clear_error_within_seconds(tmp_path, ray_config):
    config = ray_config(tmp_path, executor={"name": "ray", "address": "127.0.0.1:9"},
                          metrics=["error_barrier"])
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"cannot reach the Ray cluster at '127.0.0.1:9'.*ray start --head"):
        Pipeline(config, progress=False).run()
    assert time.perf_counter() - start < 10


SWEEP_TOML = """
output = "r.h5"
aligners = ["identity", { name = "weight_matching", order = ["random", "best"] }]
metrics = [{ name = "error_barrier", grid = 3 }]
[dataset]
name = "synthetic"
features = 12
num_classes = 3
train_size = 128
test_size = 64
[model]
name = "mlp"
widths = [8]
[train]
steps = 10
batch_size = 32
[[pairs]]
name = "sw"
seeds = "0..2"
pairs = "all"
"""


def test_the_command_line_runs_a_sweep_on_ray_and_explains_a_bad_address(tmp_path, capsys, local_ray):
    from ridgeline.core.cli import main

    pipeline = tmp_path / "sweep.toml"
    pipeline.write_text(SWEEP_TOML)
    assert main(["run", str(pipeline), "--quiet", "--executor", "ray"]) == 0
    printed = capsys.readouterr().out
    assert "sw:seed1-seed2" in printed and "weight_matching[order=best]" in printed
    assert "sweeps (mean ± standard deviation over pairs)" in printed
    assert read_metadata(tmp_path / "r.h5")["complete"]
    assert main(["run", str(pipeline), "--executor", "ray", "--address", "127.0.0.1:9",
                 "--output", str(tmp_path / "other.h5")]) == 2
    assert "cannot reach the Ray cluster at '127.0.0.1:9'" in capsys.readouterr().err
    assert not (tmp_path / "other.h5").exists()
