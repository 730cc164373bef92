"""The built-in web chat: a browser page and a JSON API on the gateway, no token needed.

``inbound``/``routes``/``replies`` run in the gateway, ``outbound`` in the workers; this package
imports none of them, so each side loads only its own half.
"""
