"""Tool calling: MCP servers and built-in tools as sources, the allow-list, the tool loop (docs/tools.md)."""
