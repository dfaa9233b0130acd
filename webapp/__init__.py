"""Gradio front end of fewshot-studio. Talks to `tasks` only and never imports torch."""
