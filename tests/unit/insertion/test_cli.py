"""The insert command: options of the job's parameters, the same run as the job."""

from __future__ import annotations

import json

from tests.unit.insertion.common import noise_image


def test_cli_inserts_into_an_image_and_reports_bad_input(tmp_path, capsys):
    from engine.__main__ import main

    noise_image().save(tmp_path / "photo.png")
    common = ["insert", "--image", str(tmp_path / "photo.png"), "--prompt", "a cat", "--steps", "2",
              "--preset", "insertion-tiny", "--out", str(tmp_path / "out")]
    assert main([*common, "--box", "10,10,50,40", "--variants", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"][1].endswith("result_seed1.png")
    assert main(common) == 2
    assert "Mark the region" in capsys.readouterr().err
