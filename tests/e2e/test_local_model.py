"""The default, with nothing configured: the real SmolLM2 model answers through the whole pipeline."""

from __future__ import annotations

import pytest

from tests.e2e.harness import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_real_local_model_answers_through_the_pipeline(make_cluster) -> None:
    cluster = make_cluster({"PATCHBAY_LLM_MAX_TOKENS": "24"}).start(workers=1)
    response = cluster.chat("u1", "hello")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"].strip() and body["reason"] is None
    assert "sim reply" not in body["text"]
    replied = wait_until(
        lambda: [line for line in cluster.logs("worker0").splitlines() if " replied key=" in line], what="the reply log"
    )
    assert "provider=local" in replied[0], replied
