# One CUDA-capable image for both roles:
#   web:    docker run -p 127.0.0.1:7860:7860 -e FEWSHOT_AUTH=user:password IMAGE    (default command; it listens
#           on 0.0.0.0 in the container, which the app allows only with accounts)
#   worker: docker run --gpus all IMAGE celery -A tasks worker -Q quick,long --concurrency 1 --loglevel INFO
# Both need the same FEWSHOT_REDIS_URL, the same artifact volume at /data and the same weights at /models.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    FEWSHOT_HOST=0.0.0.0 \
    FEWSHOT_ARTIFACT_DIR=/data/artifacts \
    FEWSHOT_MODELS_DIR=/models \
    HF_HOME=/models/huggingface \
    GRADIO_ANALYTICS_ENABLED=False

WORKDIR /app
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY tasks ./tasks
COPY webapp ./webapp
COPY assets ./assets
# Everything from PyPI, torch included (its CUDA build: runs on the GPU with `--gpus all`, else on the CPU).
RUN pip install . \
 && useradd --create-home --uid 1000 studio \
 && mkdir -p /data/artifacts /models \
 && chown -R studio /data /models
USER studio
VOLUME ["/data", "/models"]
EXPOSE 7860
CMD ["python", "-m", "webapp"]
