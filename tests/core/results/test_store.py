from __future__ import annotations

import math

import h5py
import pytest
import torch

from ridgeline.core.errors import ResultsMismatchError
from ridgeline.core.interfaces.aligner import Alignment
from ridgeline.core.results.readers import read_curves, read_summaries
from ridgeline.core.results.store import ResultsStore
from ridgeline.core.results.writer import Writer

LEVELS = ("wm", "none", "linear", "line", "loss_barrier")


def write_points(path, values, *, background=False, finish=True):
    with ResultsStore(path, {"a": 1}, {"device": "cpu"}) as store, Writer(store, background=background) as w:
        series = store.series("pair", LEVELS, ("t", "loss"))
        for i, v in enumerate(values[series.n_done:], start=series.n_done):
            w.append(series, {"t": i / 10, "loss": torch.tensor(v)})
        w.drain()
        if finish:
            w.finish(series, {"barrier": max(values)})
            store.mark_complete({"total": 1.0})


@pytest.mark.parametrize("background", [False, True])
def test_points_are_appended_and_read_back_as_tidy_rows(tmp_path, background):
    path = tmp_path / "r.h5"
    write_points(path, [1.0, 2.0, 3.0], background=background)
    rows = read_curves(path)
    assert [r["loss"] for r in rows] == [1.0, 2.0, 3.0]
    assert rows[0]["pair"] == "pair" and rows[0]["aligner"] == "wm" and rows[0]["metric"] == "loss_barrier"
    (summary,) = read_summaries(path)
    assert summary["barrier"] == 3.0 and summary["complete"] and summary["points"] == 3
    with h5py.File(path, "r") as f:
        dataset = f["pairs/pair/curves/wm/none/linear/line/loss_barrier/loss"]
        assert dataset.maxshape == (None,) and dataset.chunks is not None
        assert math.isnan(dataset.fillvalue)
        assert f.attrs["complete"]


def test_an_unfinished_series_is_readable_and_resumes(tmp_path):
    path = tmp_path / "r.h5"
    write_points(path, [1.0, 2.0], finish=False)
    (summary,) = read_summaries(path)
    assert not summary["complete"] and summary["points"] == 2
    write_points(path, [1.0, 2.0, 5.0])
    assert [r["loss"] for r in read_curves(path)] == [1.0, 2.0, 5.0]


def test_a_different_config_is_refused_naming_the_difference(tmp_path):
    path = tmp_path / "r.h5"
    ResultsStore(path, {"model": {"width": 8}}, {}).close()
    with pytest.raises(ResultsMismatchError, match=r"model.width: file has 8, pipeline has 16"):
        ResultsStore(path, {"model": {"width": 16}}, {})


def test_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = [1, 2]
    with pytest.raises(ResultsMismatchError, match="not a ridgeline results file"):
        ResultsStore(path, {}, {})
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(ResultsMismatchError, match="not a readable HDF5 file"):
        ResultsStore(text, {}, {})


def test_alignments_round_trip(tmp_path):
    path = tmp_path / "r.h5"
    perms = {"g": torch.tensor([2, 0, 1])}
    with ResultsStore(path, {}, {}) as store:
        assert store.read_alignment("p", "wm") is None
        plan = torch.eye(3)[perms["g"]] / 3
        store.write_alignment("p", "wm", [Alignment(perms=perms, objective=3.5, history=(1.0, 3.5),
                                                    transport={"g": plan})])
    with ResultsStore(path, {}, {}) as store:
        stored = store.read_alignment("p", "wm")
    assert torch.equal(stored["perms"][0]["g"], perms["g"])
    with h5py.File(path) as f:
        assert f["pairs/p/alignments/wm/transport/0/g"][()].tolist() == plan.tolist()
        assert f["pairs/p/alignments/wm/history"][()].tolist() == [1.0, 3.5]


def test_errors_in_the_background_writer_surface(tmp_path):
    with ResultsStore(tmp_path / "r.h5", {}, {}) as store:
        writer = Writer(store, background=True)
        series = store.series("p", LEVELS, ("t",))
        writer.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            writer.drain()
        writer.append(series, {"t": 0.0})
        writer.close()


def test_records_must_match_the_columns_and_keep_double_precision(tmp_path):
    with ResultsStore(tmp_path / "r.h5", {}, {}) as store:
        series = store.series("p", LEVELS, ("t", "loss"))
        with pytest.raises(ResultsMismatchError, match=r"missing \['loss'\], unexpected \['lsos'\]"):
            series.append({"t": 0.0, "lsos": 1.0})
        series.append({"t": torch.tensor(0.1, dtype=torch.float64), "loss": 1.0})
        assert series.records()[0]["t"] == 0.1


def test_reopening_on_another_device_is_refused_and_the_original_metadata_kept(tmp_path):
    path = tmp_path / "r.h5"
    ResultsStore(path, {"a": 1}, {"device": "cuda", "torch_version": "2.14.1"}).close()
    with pytest.raises(ResultsMismatchError, match="written on 'cuda', this run is on 'cpu'"):
        ResultsStore(path, {"a": 1}, {"device": "cpu"})
    ResultsStore(path, {"a": 1}, {"device": "cuda", "torch_version": "2.99"}).close()
    with h5py.File(path) as f:
        assert f.attrs["torch_version"] == "2.14.1"
        assert "2.99" in f.attrs["resumes"]


def test_changed_endpoints_are_refused(tmp_path):
    with ResultsStore(tmp_path / "r.h5", {}, {}) as store:
        store.check_endpoints("p", "abc")
        store.check_endpoints("p", "abc")
        with pytest.raises(ResultsMismatchError, match="not the ones its results were measured on"):
            store.check_endpoints("p", "abd")


def test_readers_explain_files_they_cannot_read(tmp_path):
    from ridgeline.core.errors import ResultsReadError

    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ResultsReadError, match="not a readable HDF5 file"):
        read_summaries(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = [1]
    with pytest.raises(ResultsReadError, match="not a ridgeline results file"):
        read_curves(tmp_path / "other.h5")


class Failure(Exception):
    pass


def test_a_run_that_fails_before_its_first_record_leaves_no_file(tmp_path):
    path = tmp_path / "r.h5"
    with pytest.raises(Failure), ResultsStore(path, {"a": 1}, {"device": "cpu"}) as store:
        store.check_endpoints("pair", "f" * 64)
        store.series("pair", LEVELS, ("t", "loss"))  # created, but no point written
        raise Failure
    assert not path.exists()


def test_a_failed_run_keeps_what_it_recorded_and_files_it_did_not_create(tmp_path):
    recorded = tmp_path / "recorded.h5"
    with pytest.raises(Failure), ResultsStore(recorded, {"a": 1}, {}) as store:
        store.write_alignment("pair", "wm", [Alignment(perms={"g": torch.arange(3)})])
        raise Failure
    assert recorded.exists()
    earlier = tmp_path / "earlier.h5"
    ResultsStore(earlier, {"a": 1}, {}).close()  # an earlier run's file, empty as it may be
    with pytest.raises(Failure), ResultsStore(earlier, {"a": 1}, {}):
        raise Failure
    assert earlier.exists()


def test_a_series_sharing_another_ones_rows_links_its_columns_and_follows_its_points(tmp_path):
    path = tmp_path / "r.h5"
    error_levels = (*LEVELS[:-1], "error_barrier")
    with ResultsStore(path, {"a": 1}, {}) as store:
        first = store.series("pair", LEVELS, ("t", "loss"), labels=["a", "b"])
        for i in range(2):
            first.append({"t": i, "loss": 2.0 * i})
        second = store.series("pair", error_levels, ("t", "loss"), shares=LEVELS)
        assert second.shares == first.group.name and second.group["labels"] == first.group["labels"]
        with pytest.raises(ResultsMismatchError, match="shares the columns"):
            second.append({"t": 0, "loss": 0.0})
        second.follow(first)
        assert second.records() == first.records() == [{"t": 0.0, "loss": 0.0}, {"t": 1.0, "loss": 2.0}]
        with pytest.raises(ResultsMismatchError, match="does not share"):
            first.follow(second)
    rows = read_curves(path)
    assert [r["loss"] for r in rows if r["metric"] == "error_barrier"] == [0.0, 2.0]
