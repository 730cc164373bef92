"""What the edge and the workers share, and nothing else: the one package both sides import.

The envelope and reply (``envelope``), settings and ``patchbay.toml`` plumbing (``settings``,
``config``), every Redis key and queue name (``keys``, ``queue``), the analytics event format
(``events``) and Redis URL spelling (``redis_urls``). Modules here import only each other and
third-party libraries, so importing any of them never pulls in the gateway's HTTP app or a
worker's stack; the import-linter contracts in ``pyproject.toml`` keep it that way.
"""
