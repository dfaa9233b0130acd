"""`python -m webapp`: serve the app at http://127.0.0.1:7860 (FEWSHOT_HOST / FEWSHOT_PORT)."""

from __future__ import annotations

import logging


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from webapp.app import launch

    launch()


if __name__ == "__main__":
    main()
