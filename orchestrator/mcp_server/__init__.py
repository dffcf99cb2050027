"""The MCP server: the fleet's phones as tools for another agent (docs/mcp.md), on the ``mcp`` SDK.

    tools.py   the tools (sessions, screenshot, UI tree, input, launch, run a task, devices)
    http.py    streamable HTTP, mounted on the API at /mcp (each request's own Bearer key)

``phonefleet mcp`` (``orchestrator/cli/mcp.py``) serves the same tools over stdio. Either way every
tool goes through the REST API with the caller's key (``orchestrator/async_client.py``), so a
tenant's limits, roles and isolation apply exactly as over REST; nothing here touches the database
or a phone directly.
"""
