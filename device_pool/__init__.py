"""Phones: the ADB driver, providers, the pool manager and the virtual phone (``sim``)."""
