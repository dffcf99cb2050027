"""What the raw ASGI wrappers in front of the API's routing (``dashboard.py``, ``submission.py``) share."""

from __future__ import annotations

from typing import Any

__all__ = ["route_path"]


def route_path(scope: dict[str, Any]) -> str:
    """The request's path below the app's mount point: ``root_path`` (uvicorn ``--root-path``, a proxy
    prefix) removed, ``/`` when nothing is left."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"
