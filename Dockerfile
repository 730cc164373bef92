# One image for the gateway and the workers (docker-compose.yml picks the command).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake espeak-ng sox opus-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY workers workers
COPY patches patches
COPY adapters adapters
# Portable llama.cpp build: the native one crashes on some x86-64 CPUs (docs/decisions.md, "Packaging").
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN CMAKE_ARGS="$CMAKE_ARGS" pip install --no-cache-dir .
ENV PATCHBAY_DATA_DIR=/data PATCHBAY_HTTP_HOST=0.0.0.0
VOLUME /data
EXPOSE 8000
CMD ["patchbay", "gateway"]
