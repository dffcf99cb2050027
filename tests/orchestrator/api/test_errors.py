"""The one status table: every error the orchestrator raises on purpose has a status, and never 500."""

from __future__ import annotations

import inspect

import device_pool.errors
import orchestrator.errors
from orchestrator.api.errors import status_for


def _error_classes(module: object) -> list[type[device_pool.errors.PhoneFleetError]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, device_pool.errors.PhoneFleetError)
        and cls is not device_pool.errors.PhoneFleetError
    ]


def _instance(cls: type) -> device_pool.errors.PhoneFleetError:
    # Constructors differ; build without __init__ — only the class matters to the table.
    return cls.__new__(cls)


def test_every_orchestrator_and_device_error_maps_to_a_4xx_or_5xx_that_is_not_500() -> None:
    for cls in _error_classes(orchestrator.errors) + _error_classes(device_pool.errors):
        status = status_for(_instance(cls))
        assert status is not None and status != 500, cls


def test_the_nearest_class_in_the_mro_wins() -> None:
    assert status_for(orchestrator.errors.TaskNotFound("x")) == 404
    assert status_for(orchestrator.errors.InvalidTransition("x", current="a", requested="b")) == 409
    assert status_for(orchestrator.errors.InvalidCursor("x")) == 422
    assert status_for(orchestrator.errors.DatabaseUnavailable("x")) == 503
    assert status_for(device_pool.errors.DeviceOffline("x")) == 502
    assert status_for(device_pool.errors.PhoneFleetError("x")) is None  # unmapped: logged, then 500
