"""WinCLIP's compositional prompt ensemble: state words x templates, per class.

The templates are anomalib's (`anomalib.models.image.winclip.prompting`, after the WinCLIP paper) as pairs of
"a" and "the": anomalib lists "a jpeg corrupted photo of the {}." twice and lacks "a cropped photo of a {}.";
here each of the 11 phrasings appears once with each article, 22 templates.
"""

from __future__ import annotations

NORMAL_STATES = (
    "{}",
    "flawless {}",
    "perfect {}",
    "unblemished {}",
    "{} without flaw",
    "{} without defect",
    "{} without damage",
)
ANOMALOUS_STATES = ("damaged {}", "{} with flaw", "{} with defect", "{} with damage")
TEMPLATES = (
    "a cropped photo of the {}.",
    "a cropped photo of a {}.",
    "a close-up photo of a {}.",
    "a close-up photo of the {}.",
    "a bright photo of a {}.",
    "a bright photo of the {}.",
    "a dark photo of the {}.",
    "a dark photo of a {}.",
    "a jpeg corrupted photo of a {}.",
    "a jpeg corrupted photo of the {}.",
    "a blurry photo of the {}.",
    "a blurry photo of a {}.",
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of a small {}.",
    "a photo of the small {}.",
    "a photo of a large {}.",
    "a photo of the large {}.",
    "a photo of the {} for visual inspection.",
    "a photo of a {} for visual inspection.",
    "a photo of the {} for anomaly detection.",
    "a photo of a {} for anomaly detection.",
)


def prompt_ensemble(object_name: str) -> tuple[list[str], list[str]]:
    """All (normal, anomalous) prompts for one object: 154 and 88 with the default words."""

    def expand(states: tuple[str, ...]) -> list[str]:
        return [template.format(state.format(object_name)) for state in states for template in TEMPLATES]

    return expand(NORMAL_STATES), expand(ANOMALOUS_STATES)
