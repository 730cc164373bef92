"""The LLM component: the base litellm client, the local offline model, and the helpers of the
resilience patch (``patches.llm_resilience``): Router, cache, token trimming, accounting.

Nothing here imports litellm at module import: litellm takes over a second to import and fetches
a cost map from the network unless told not to (docs/decisions.md, "litellm"), so every module
imports it lazily through ``workers.llm.litellm_loader``.
"""
