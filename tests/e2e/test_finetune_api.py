"""The fine-tuning tab's endpoints on the launched app, through gradio_client."""

from __future__ import annotations

import pytest
import torch
from gradio_client import Client, handle_file

from tests.helpers import colour_classes, zip_tree

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU


@pytest.fixture(scope="module")
def api(app_url) -> Client:
    return Client(app_url, verbose=False)


def test_train_see_curves_and_metrics_then_classify_download_and_delete(api, tmp_path):
    root = colour_classes(tmp_path / "set")
    archive = zip_tree(root, tmp_path / "colours.zip")
    empty = [None, None] * 3
    status, plot, metrics, matrix, _blocks, _comparison, comparison_plot, downloads, _ = api.predict(
        [handle_file(str(archive))], *empty, "api colours", "finetune-clip-tiny", "lora", 8, "all", 30, 1e-3, 0,
        600, None, 5.0, None, False, api_name="/finetune_classify")  # last: sparsity, retention, compare methods
    assert comparison_plot["visible"] is False  # LoRA on all blocks, not compared: no trade-off plot
    assert "Succeeded" in status and "Model **api colours** saved" in status and "random weights" in status
    points = plot.get("value", plot)
    assert {row[2] for row in points["data"]} == {"training loss", "held-out accuracy"}
    overall = metrics["data"][0]
    assert overall[0] == "all" and overall[2] >= 0.99 and overall[2] > overall[1]
    matrix = matrix.get("value", matrix)  # an update: the matrix is shown once there is one
    assert matrix["headers"] == ["true \\ predicted", "blue", "green", "red"]
    assert sorted(p.rsplit("/", 1)[-1] for p in downloads) == ["history.csv", "metrics.json", "model.zip"]
    red = sorted((root / "red").glob("*.png"))[:2]
    use_status, gallery, predictions, files = api.predict("api colours", [handle_file(str(p)) for p in red], None,
                                                          10, 1.0, api_name="/finetune_predict")
    assert "Succeeded" in use_status and [r[1] for r in predictions["data"]] == ["red", "red"]
    assert [item["caption"].split(" · ")[0] for item in gallery] == ["red", "red"]
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == ["predictions.csv", "predictions.json"]
    model_file = api.predict("api colours", api_name="/finetune_download")
    message, _ = api.predict("api copy", handle_file(model_file), api_name="/finetune_upload")
    assert "Uploaded model **api copy**" in message
    message, _ = api.predict("api copy", api_name="/finetune_delete")
    assert "Deleted model **api copy**" in message


def test_a_single_class_fails_with_a_message(api, tmp_path):
    root = colour_classes(tmp_path / "set", per_class=2)
    rows = ["ok", [handle_file(str(p)) for p in sorted((root / "red").glob("*.png"))], None, None, None, None]
    status, *_ = api.predict(None, *rows, "single", "finetune-clip-tiny", "lora", 8, "all", 5, 1e-3, 0, 60,
                             None, 5.0, None, False, api_name="/finetune_classify")
    assert "Failed" in status and "at least two classes" in status


def test_a_message_quoting_text_with_a_less_than_sign_reaches_the_api_as_written(api, tmp_path):
    """The page gets its messages HTML-escaped for its toast; an API client gets the text itself."""
    archive = zip_tree(colour_classes(tmp_path / "set", per_class=2), tmp_path / "colours.zip")
    with pytest.raises(Exception, match=r"^Model name 'a<b & c>d' is not accepted: use 1 to 60 letters"):
        api.predict([handle_file(str(archive))], *[None, None] * 3, "a<b & c>d", "finetune-clip-tiny", "lora", 8,
                    "all", 5, 1e-3, 0, 60, None, 5.0, None, False, api_name="/finetune_classify")
