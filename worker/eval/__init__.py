"""Evaluation: task templates judged from the phone's state, the built-in suite, the scripted person
(docs/evals.md). Used by the worker's run (next to the phone it leased) and by the reference model's
scripted mode; it imports nothing of the orchestrator."""
