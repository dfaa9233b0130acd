"""A status line lists a run's skipped inputs up to a bound, then counts the rest: a zip of thousands of unreadable
images made the training's status line thousands of paragraphs long."""

from __future__ import annotations

from tasks.jobs import Job, Status
from webapp import finetune_tab
from webapp.views import SKIPPED_SHOWN, skipped_markdown


def skipped(count: int) -> list[dict[str, str]]:
    return [{"file": f"bad_{n}.png", "error": f"bad_{n}.png: the image is corrupt"} for n in range(count)]


def test_the_first_skipped_are_listed_then_the_rest_counted():
    line = skipped_markdown(skipped(500), rest_in="all in proposals.json")
    assert line.startswith("\n\n**Skipped (500):**\n- bad_0.png: the image is corrupt")
    assert line.count("\n- ") == SKIPPED_SHOWN + 1 and f"bad_{SKIPPED_SHOWN - 1}.png" in line
    assert f"bad_{SKIPPED_SHOWN}.png" not in line
    assert line.endswith(f"- … and {500 - SKIPPED_SHOWN} more (all in proposals.json)")
    assert skipped_markdown(skipped(2)).count("\n- ") == 2 and "more" not in skipped_markdown(skipped(2))
    assert skipped_markdown([]) == ""


def test_a_training_status_line_is_bounded_whatever_was_skipped():
    result = {"stopped": "max steps", "name": "parts", "classes": ["ok", "scratch"], "train_images": 8,
              "held_out_images": 2, "steps_run": 10, "best_step": 9, "skipped": skipped(5000)}
    line = finetune_tab.summary_line(Job(id="f" * 32, tool="finetune_classify", params={}, status=Status.SUCCEEDED,
                                         result=result))
    assert "Model **parts** saved" in line and "**Skipped (5000):**" in line
    assert line.count("bad_") == SKIPPED_SHOWN and f"… and {5000 - SKIPPED_SHOWN} more" in line
