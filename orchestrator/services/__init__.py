"""Domain services the API routes (and CLI commands) call: tasks, steps, sessions, devices, keys,
logins, events, webhooks, metrics, readiness. Import each from its module; this package re-exports
nothing, so importing one service never loads the others.
"""
