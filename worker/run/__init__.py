"""A run: the worker's handling of one task — claim it, lease a device, drive the agent, finish, release.

``drive.py`` is the whole run in order; ``rows.py`` the task's rows (claim, steps, events);
``hooks.py`` what the agent's hooks write and the watcher that races cancels and heartbeats the lease.
"""
