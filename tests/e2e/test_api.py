"""The launched app through gradio_client: the same endpoints the page calls."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file

from tasks import client


@pytest.fixture(scope="module")
def api(app_url) -> Client:
    return Client(app_url, verbose=False)


def test_anomaly_tab_returns_a_heat_map_for_a_real_image(api, shared_data):
    image = next((shared_data / "anomaly" / "magnetic_tile" / "test").glob("*/*.png"))
    status, gallery, table, downloads = api.predict(
        [handle_file(str(image))], None, "magnetic tile", "winclip-tiny", api_name="/anomaly"
    )
    assert "Succeeded" in status
    assert len(gallery) == 1 and gallery[0]["caption"].startswith(f"{image.name} · score ")
    assert table["data"][0][0] == image.name and 0.0 <= table["data"][0][1] <= 1.0
    assert sorted(p.rsplit("/", 1)[-1] for p in downloads) == ["000_" + image.stem + "_map.png", "scores.json"]


def test_real_preset_offline_shows_the_missing_weights_fix(api, metal_plate_images):
    status, gallery, _, _ = api.predict(
        [handle_file(str(metal_plate_images[0]))], None, "metal plate", "winclip-vit-b-16-plus-240", api_name="/anomaly"
    )
    assert "Failed" in status and "make weights" in status and "FEWSHOT_MODELS_DIR" in status
    assert gallery == []


def test_a_file_that_is_not_an_image_gets_a_clear_message(api, tmp_path):
    fake = tmp_path / "scan.png"
    fake.write_bytes(b"%PDF-1.7 definitely not a png")
    status, *_ = api.predict([handle_file(str(fake))], None, "plate", "winclip-tiny", api_name="/anomaly")
    assert "Failed" in status and "scan.png: not an image in an accepted format" in status
    assert "Traceback" not in status


def test_no_upload_is_refused_before_a_job_is_made(api):
    before = len(client.list_jobs(1000))
    with pytest.raises(Exception, match="Upload at least one image"):
        api.predict(None, None, "plate", "winclip-tiny", api_name="/anomaly")
    assert len(client.list_jobs(1000)) == before


def test_jobs_endpoints_list_open_and_cancel(api, metal_plate_images):
    api.predict([handle_file(str(metal_plate_images[0]))], None, "plate", "winclip-tiny", api_name="/anomaly")
    rows = api.predict(api_name="/list_jobs")["data"]
    newest = rows[0]
    assert newest[1] == "anomaly" and newest[2] == "succeeded"
    details, gallery, _, files = api.predict(newest[0], api_name="/open_job")
    assert "Succeeded" in details and len(gallery) == 1 and files
    assert "No job" in api.predict("f" * 32, api_name="/open_job")[0]
    assert "Succeeded" in api.predict(newest[0], api_name="/cancel_job")  # a finished job stays finished


def test_good_part_references_switch_on_winclip_plus(api, shared_data):
    tile = shared_data / "anomaly" / "magnetic_tile"
    test_image = next((tile / "test").glob("*/*.png"))
    references = [handle_file(str(p)) for p in sorted((tile / "train" / "good").glob("*.png"))[:2]]
    status, gallery, *_ = api.predict(
        [handle_file(str(test_image))], references, "magnetic tile", "winclip-tiny", api_name="/anomaly"
    )
    assert "Succeeded" in status and len(gallery) == 1
    job = client.list_jobs(1)[0]
    assert job.result["mode"] == "WinCLIP+ (2 good references)"
    assert sum(stored.startswith("references/") for stored in job.inputs) == 2


def test_evaluate_a_zipped_labelled_set(api, shared_data, tmp_path):
    import zipfile

    root = shared_data / "anomaly" / "kolektorsdd"
    archive = tmp_path / "kolektor.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, f"kolektorsdd/{path.relative_to(root)}")
    status, roc, metrics, files = api.predict(
        handle_file(str(archive)), "commutator", 0, "winclip-tiny", api_name="/evaluate_anomaly"
    )
    assert "Succeeded" in status and len(roc) == 1
    assert metrics["headers"][:3] == ["set", "image AUROC", "pixel AUROC"]
    assert metrics["data"][0][0] == "all" and 0.0 <= metrics["data"][0][1] <= 1.0
    assert sorted(f.rsplit("/", 1)[-1] for f in files) == ["metrics.json", "roc.png", "scores.csv"]


def test_evaluate_without_a_zip_is_refused(api):
    with pytest.raises(Exception, match=r"Upload a \.zip"):
        api.predict(None, "x", 0, "winclip-tiny", api_name="/evaluate_anomaly")
