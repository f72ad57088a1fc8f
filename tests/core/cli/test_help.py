"""Help texts and `ridgeline init`: every command and argument explains itself in plain text, the
pipeline commands point to an example file, and init's templates are pipelines that run."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

from ridgeline.core.cli import build_parser, main
from ridgeline.core.cli.commands import TEMPLATES
from ridgeline.core.run.config import PipelineConfig

ROOT = Path(__file__).resolve().parents[3]
MARKUP = re.compile(r"``|:(func|class|meth|mod|data):`")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_top_level_help_is_plain_and_names_every_command():
    parser = build_parser()
    assert not MARKUP.search(parser.description)
    for command in _subparsers():
        assert re.search(rf"\b{command}\b", parser.description), f"{command} missing from ridgeline --help"


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_command_and_argument_has_a_one_line_plain_help(command):
    sub = _subparsers()[command]
    assert sub.description and not MARKUP.search(sub.description)
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"ridgeline {command}: {action.dest} has no help"
        assert "\n" not in action.help and not MARKUP.search(action.help), action.help
    sub.format_help()  # renders (a bad % in a help text would raise here)


@pytest.mark.parametrize("command", ["run", "compare", "spec"])
def test_pipeline_commands_point_to_example_files_that_exist(command):
    epilog = _subparsers()[command].epilog or ""
    named = re.findall(r"(?:examples|docs)/[\w./-]+\.(?:toml|md)", epilog)
    assert named, f"ridgeline {command} --help names no example file"
    for path in named:
        assert (ROOT / path).is_file(), f"ridgeline {command} --help names {path}, which does not exist"


@pytest.mark.parametrize("template", TEMPLATES)
def test_init_writes_a_commented_pipeline_that_parses(template, tmp_path, capsys, regs):
    out = tmp_path / "pipeline.toml"
    assert main(["init", "--template", template, "--out", str(out)]) == 0
    assert f"then: ridgeline {'compare' if template == 'compare' else 'run'} {out}" in capsys.readouterr().out
    text = out.read_text()
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 8, "a template explains itself"
    config = PipelineConfig.from_toml(out)
    config.check_names(regs)
    for kind in ("aligners", "metrics"):
        for entry in getattr(config, kind):
            regs.of(kind).create(entry.name, **entry.options)  # every option is accepted
    for corrections in config.corrections:
        for entry in corrections:
            regs.corrections.create(entry.name, **entry.options)
    assert Path(config.output).parent.parent == tmp_path  # outputs sit beside the file


@pytest.mark.parametrize(("template", "command"), [("quickstart", "run"), ("compare", "compare"),
                                                   ("landscape", "run")])
def test_init_header_names_the_file_written_and_its_results(template, command, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp").mkdir()
    assert main(["init", "--template", template, "--out", "exp/c.toml"]) == 0
    assert f"then: ridgeline {command} exp/c.toml" in capsys.readouterr().out
    text = (tmp_path / "exp" / "c.toml").read_text()
    header = [line for line in text.splitlines() if line.startswith("#   ridgeline")]
    assert f"#   ridgeline {command} exp/c.toml" in text and "pipeline.toml" not in text
    output = tomllib.loads(text)["output"]
    assert all(f"exp/{output}" in line for line in header[1:])  # results paths from where you are


def test_init_quickstart_is_the_quickstart_pipeline(tmp_path, capsys):
    out = tmp_path / "pipeline.toml"
    main(["init", "--out", str(out)])
    written = tomllib.loads(out.read_text())
    example = tomllib.loads((ROOT / "examples" / "quickstart.toml").read_text())
    assert written == example


def test_init_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "pipeline.toml"
    out.write_text("mine")
    assert main(["init", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_text() == "mine"
    assert main(["init", "--out", str(out), "--force", "--template", "compare"]) == 0
    assert "aligners" in out.read_text()


@pytest.mark.slow
def test_init_compare_template_runs_when_shrunk(tmp_path, capsys):
    out = tmp_path / "pipeline.toml"
    main(["init", "--template", "compare", "--out", str(out)])
    out.write_text(out.read_text().replace("steps = 300", "steps = 10").replace("grid = 25", "grid = 3"))
    assert main(["compare", str(out), "--quiet"]) == 0
    assert "ot_fusion" in capsys.readouterr().out
