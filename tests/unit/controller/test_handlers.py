"""The kopf glue's settings hold for the handlers it registers."""

from __future__ import annotations

import kopf

from rayref.controller.handlers import WatchOnlyDiffBaseStorage, configure_kopf, register


def test_the_operator_registers_no_handler_that_would_read_a_diff_base() -> None:
    registry = kopf.OperatorRegistry()
    register(registry)
    assert registry._watching.get_all_handlers(), "the refs' and sets' event handlers"
    # on.create/update/delete/resume/field and daemons/timers compare against kopf's
    # diff base, which WatchOnlyDiffBaseStorage never keeps
    assert not registry._changing.get_all_handlers()
    assert not registry._spawning.get_all_handlers()


def test_events_cost_no_copy_of_the_body() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings)
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, WatchOnlyDiffBaseStorage)
    body = kopf.Body({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 2}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
