"""``ridgeline spec``: a model at its own input size, architecture names as shorthand, the
coverage table of ``--all PATTERN``, and one-line errors for inputs an architecture cannot take."""

from __future__ import annotations

import re

import pytest

from ridgeline.core.cli import main

pytest.importorskip("timm")


def test_without_a_dataset_a_timm_model_runs_at_its_own_input_size(capsys):
    assert main(["spec", "timm", "-o", "arch=test_resnet"]) == 0
    out = capsys.readouterr().out
    assert '"input_shape": [3, 160, 160]' in out and '"num_classes": 1000' in out
    assert "coverage: 100.0%" in out and "check: passed" in out


def test_an_architecture_name_is_shorthand_for_the_timm_model(capsys):
    assert main(["spec", "test_resnet", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "model 'timm'" in out and '"arch": "test_resnet"' in out and "coverage: 100.0%" in out


def test_an_unknown_name_gets_close_registry_and_architecture_matches(capsys):
    assert main(["spec", "mpl"]) == 2
    assert "no models or architectures named 'mpl'; did you mean 'mlp'" in capsys.readouterr().err
    assert main(["spec", "resnet26x"]) == 2
    assert "'resnet26d'" in capsys.readouterr().err  # a timm architecture


def test_all_prints_the_coverage_table_for_a_pattern(capsys):
    assert main(["spec", "--all", "test_res*", "--seeds", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| model | input | coverage | groups | frozen groups")
    row = next(line for line in lines if line.startswith("| test_resnet "))
    assert "| 3x160x160 | 100.0% |" in row and "| none |" in row


@pytest.mark.parametrize(("arch", "size"),
                         [("test_vit", 160), ("cait_xxs24_224", 224), ("resmlp_12_224", 224)])
def test_a_fixed_size_architecture_on_a_small_dataset_says_which_size_it_takes(capsys, arch, size):
    assert main(["spec", arch, "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"'{arch}' takes only {size}x{size} inputs" in err and "img_size=8" in err
    assert f"`ridgeline spec {arch}`" in err


def test_an_architecture_too_deep_for_the_input_names_its_native_size(capsys):
    assert main(["spec", "dla34", "--dataset", "digits"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "built for 3x224x224 inputs, not 1x8x8" in err and "`ridgeline spec dla34`" in err


@pytest.mark.parametrize(("argv", "source"), [
    (["spec", "mlp", "--dataset", "digits", "-o", "num_classes=2"], r"dataset 'digits' \(10 classes\)"),
    (["spec", "test_resnet", "-o", "num_classes=2"], r"the architecture's own size \(1000 classes\)"),
])
def test_num_classes_as_a_model_option_is_refused_naming_where_it_comes_from(capsys, argv, source):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(f"num_classes is not an option: it comes from {source}", err)
