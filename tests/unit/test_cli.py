"""The command line's own checks, shared by every subcommand."""

from __future__ import annotations

import pytest

from engine.__main__ import main

COMMANDS = [
    ["anomaly", "--images", "part.png", "--object", "plate", "--preset", "winclip-tiny"],
    ["evaluate", "--data", "tiles", "--object", "tile", "--preset", "winclip-tiny"],
    ["insert", "--image", "street.png", "--box", "1,2,30,40", "--prompt", "a car", "--preset", "insertion-tiny"],
    ["complete", "run", "--data", "scene", "--preset", "completion-tiny"],
    ["finetune", "classify", "--data", "classes", "--preset", "finetune-clip-tiny"],
    ["finetune", "detect", "--data", "boxes"],
    ["finetune", "predict", "--model", "model", "--images", "part.png"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command[:2]))
@pytest.mark.parametrize("out, why", [("a-file", "a file, not a folder"), ("a-file/below", "cannot be written to"),
                                      ("/proc/nope", "cannot be written to")])
def test_an_unusable_out_is_a_one_line_error_before_anything_runs(tmp_path, monkeypatch, capsys, command, out, why):
    monkeypatch.chdir(tmp_path)  # the inputs named do not exist: the --out check comes first
    (tmp_path / "a-file").write_text("results of another run")
    assert main([*command, "--out", out]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith(f"error: --out {out}: {why}")
    assert printed.err.count("\n") == 1 and "Traceback" not in printed.err
    assert "give a folder (created if missing) that can be written to." in printed.err
    assert (tmp_path / "a-file").read_text() == "results of another run"


def test_a_usable_out_is_created_and_the_command_goes_on_to_its_inputs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*COMMANDS[0], "--out", "new/results"]) == 2
    assert (tmp_path / "new" / "results").is_dir()
    assert capsys.readouterr().err == "error: part.png: no such file or directory.\n"
