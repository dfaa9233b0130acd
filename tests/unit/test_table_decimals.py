"""Result tables show every score, probability and metric with one fixed number of decimals (0.729 stood beside
0.7225: Gradio drops a number's trailing zeros), while each cell keeps its number, so that sorting a column orders
numbers and the API returns numbers."""

from __future__ import annotations

from tasks.jobs import Job, Status
from tests.unit.test_review_labels import proposal, review_of
from webapp import completion_tab, finetune_tab
from webapp.views import fixed_decimals


def shown(table: dict) -> list[list[str | None]]:
    return table["metadata"]["display_value"]


def test_fractional_numbers_show_four_decimals_and_stay_numbers():
    table = fixed_decimals([["a.png", 0.729, 3, True, None], ["b.png", 0.722512, 12, False, "skipped"]])
    assert table["data"] == [["a.png", 0.729, 3, True, None], ["b.png", 0.7225, 12, False, "skipped"]]
    assert shown(table) == [[None, "0.7290", None, None, None], [None, "0.7225", None, None, None]]  # None: as is
    assert fixed_decimals([]) == {"data": [], "metadata": {"display_value": [], "styling": []}}


def test_the_completion_review_table_shows_every_score_with_four_decimals(tmp_path, monkeypatch):
    review = review_of(tmp_path, monkeypatch, (100, 80), 1.0, [
        proposal(1, [10, 10, 20, 20], 0.729), proposal(2, [50, 40, 10, 10], 0.7225)])
    table = completion_tab.render(review, 0.0, 0)[1]
    assert [row[2] for row in table["data"]] == [0.729, 0.7225]
    assert [row[2] for row in shown(table)] == ["0.7290", "0.7225"]


def test_the_completion_jobs_table_shows_the_best_score_with_four_decimals(tmp_path, monkeypatch):
    images = [{"file": f"{n}.png", "preview": "p.png", "existing": [], "proposals": [{"score": s}]}
              for n, s in enumerate((0.5, 0.3125))]
    monkeypatch.setattr(completion_tab, "_proposals", lambda job_id: {"images": images})
    monkeypatch.setattr(completion_tab, "job_file", lambda job, name: name)
    job = Job(id="c" * 32, tool="completion", params={}, status=Status.SUCCEEDED, result={"score_threshold": 0.3})
    table = completion_tab.result_views(job)[1]
    assert [row[3] for row in shown(table)] == ["0.5000", "0.3125"]


def test_predictions_and_k_shot_results_show_four_decimals(monkeypatch):
    monkeypatch.setattr(finetune_tab, "job_file", lambda job, name: name)
    predictions = [{"file": "a.png", "class": "cat", "probability": 0.9, "image": "a_thumb.png",
                    "probabilities": {"cat": 0.9, "dog": 0.1}}]
    job = Job(id="p" * 32, tool="finetune_predict", params={}, status=Status.SUCCEEDED,
              result={"task": "classify", "predictions": predictions})
    table = finetune_tab.prediction_rows(job)
    assert table["data"][0][2] == 0.9 and shown(table)[0][2] == "0.9000"
    assert table["data"][0][3] == "cat 0.9000, dog 0.1000"
    assert finetune_tab.prediction_gallery(job) == [("a_thumb.png", "cat · 0.9000 · a.png")]
    kshot = Job(id="k" * 32, tool="finetune_kshot", params={}, status=Status.SUCCEEDED, result={
        "metrics": ["accuracy"], "runs": [{"seed": 0, "train_images": 4, "test_images": 8, "accuracy": 0.75}],
        "summary": {"accuracy": {"mean": 0.75, "std": 0.0}}})
    assert finetune_tab.kshot_rows(kshot) == [["0", "4", "8", "0.7500"], ["mean ± std", "", "", "0.7500 ± 0.0000"]]
