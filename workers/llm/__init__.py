"""The LLM component: the base litellm client, the local offline model, the resilience layer and a simulator.

Nothing here imports litellm at module import: litellm takes over a second to import and fetches
a cost map unless told not to (NOTES §3), so every module imports it lazily through
``workers.llm.litellm_loader``.
"""
