"""Everything one simulator instance holds, and how it is seeded from a scenario."""

from __future__ import annotations

import time

from rayref.simulator.auth import AccessKey, Verifier
from rayref.simulator.clock import SimClock
from rayref.simulator.counters import Counters
from rayref.simulator.faults import FaultBook
from rayref.simulator.object_store import ObjectStore
from rayref.simulator.scenario import KeySpec, Scenario
from rayref.simulator.world import World


class SimulatorState:
    def __init__(self, scenario: Scenario, speed: float | None = None) -> None:
        self.scenario = scenario
        self.speed = scenario.settings.speed if speed is None else speed
        self.keys: dict[str, AccessKey] = {}
        self.counters = Counters()
        self.faults = FaultBook(time.monotonic)
        self.verifier = Verifier(
            self.keys,
            time.time,
            timestamp_tolerance_seconds=scenario.settings.timestamp_tolerance_seconds,
            nonce_window_seconds=scenario.settings.nonce_window_seconds,
        )
        self.clock = SimClock(self.speed)
        self.world = World(self.clock, scenario.settings.region, scenario.settings.seed)
        self.object_store = ObjectStore(self.world, self.counters)
        self.reset_keys()
        self.reset_world()
        self.reset_faults()
        self.counters.reset(self.clock.wall_ms())

    def add_key(self, spec: KeySpec) -> AccessKey:
        expires = (
            time.time() + spec.token_expires_in_seconds
            if spec.token_expires_in_seconds is not None
            else None
        )
        key = AccessKey(
            spec.access_key_id,
            spec.access_key_secret,
            spec.security_token or None,
            token_expires_at=expires,
        )
        self.keys[spec.access_key_id] = key
        return key

    def reset_keys(self) -> None:
        self.keys.clear()
        for spec in self.scenario.keys:
            self.add_key(spec)
        self.verifier.nonces.clear()

    def reset_world(self) -> None:
        """A fresh clock (at the scenario speed) and the scenario's objects again."""
        self.clock = SimClock(self.speed)
        settings = self.scenario.settings
        self.world = World(self.clock, settings.region, settings.seed)
        for workspace in self.scenario.workspaces:
            self.world.workspace(workspace.workspace_id)
            for seed in workspace.jobs:
                for spec in seed.expand():
                    self.world.create_job(workspace.workspace_id, spec)
            for cluster in workspace.clusters:
                self.world.create_cluster(workspace.workspace_id, cluster)
        self.object_store.reset(self.world)

    def reset_faults(self) -> None:
        self.faults.clear()
        for rule in self.scenario.faults:
            self.faults.set(rule)
