"""Images a user sends, on their way to a vision model: fetched safely, scaled down, sent as content parts.

``settings`` (``[vision]``), ``capability`` (does the answering model see images: litellm says),
``images`` (Pillow: decode, check, scale, re-encode), ``parts`` (OpenAI content parts, and their
text-only form for a model that cannot see), ``intake`` (one message's images: fetch, prepare,
account). docs/vision.md describes the whole path.
"""
