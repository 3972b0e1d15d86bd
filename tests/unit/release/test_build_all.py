"""`dataops images build --push` pushes each image while the next one builds."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from dataops.errors import DataOpsError
from dataops.release.images import ImageBuild, build_all


class StandIn:
    """build/push with the builder's signatures; records the order things happened in."""

    def __init__(self, names: list[str], fail_build: str | None = None) -> None:
        self.events: list[str] = []
        self.after = dict(itertools.pairwise(names))  # the image built after each
        self.building = {name: threading.Event() for name in names}
        self.fail_build = fail_build

    def build(self, name: str) -> ImageBuild:
        self.building[name].set()
        if name == self.fail_build:
            raise DataOpsError(f"image {name}: docker build failed")
        self.events.append(f"built {name}")
        return ImageBuild(name, f"hash-{name}", f"dataops/{name}:hash-{name}", built=True)

    def push(self, image: ImageBuild, env: Any) -> ImageBuild:
        after = self.after.get(image.name)
        if after:  # pushed one after the other, the next build would start only after this
            overlapped = self.building[after].wait(5)
            self.events.append(
                f"push of {image.name} overlapped the build of {after}: {overlapped}"
            )
        self.events.append(f"pushed {image.name} to {env}")
        return ImageBuild(image.name, image.content_hash, image.local, True, True, "r", "d")


NAMES = ["extract", "load", "transform"]


def test_each_push_runs_beside_the_next_build_and_results_keep_their_order() -> None:
    builder = StandIn(NAMES)
    results = build_all(builder, NAMES, "dev")  # type: ignore[arg-type]
    assert [r.name for r in results] == NAMES
    assert all(r.pushed for r in results)
    assert "push of extract overlapped the build of load: True" in builder.events
    assert "push of load overlapped the build of transform: True" in builder.events
    assert [e for e in builder.events if e.startswith("pushed")] == [
        "pushed extract to dev",
        "pushed load to dev",
        "pushed transform to dev",
    ]


def test_a_failed_build_raises_after_the_started_pushes_are_done() -> None:
    builder = StandIn(NAMES, fail_build="load")
    with pytest.raises(DataOpsError, match="image load"):
        build_all(builder, NAMES, "dev")  # type: ignore[arg-type]
    assert "pushed extract to dev" in builder.events
    assert not any("transform" in e for e in builder.events)


def test_without_a_target_nothing_is_pushed() -> None:
    builder = StandIn(["extract"])
    results = build_all(builder, ["extract"], None)  # type: ignore[arg-type]
    assert [r.pushed for r in results] == [False]
    assert builder.events == ["built extract"]


class FailingPush(StandIn):
    """The first push fails at once; the second build waits until it has."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.first_push_over = threading.Event()

    def build(self, name: str) -> ImageBuild:
        if name == NAMES[1]:
            self.first_push_over.wait(5)
        return super().build(name)

    def push(self, image: ImageBuild, env: Any) -> ImageBuild:
        try:
            if image.name == NAMES[0]:
                raise DataOpsError(f"image {image.name}: docker push to {env} failed")
            return super().push(image, env)
        finally:
            self.first_push_over.set()


def test_a_failed_push_stops_the_builds_that_follow() -> None:
    builder = FailingPush(NAMES)
    with pytest.raises(DataOpsError, match="image extract: docker push"):
        build_all(builder, NAMES, "dev")  # type: ignore[arg-type]
    # load was built while extract's push ran; nothing was built after the push had failed.
    assert "built transform" not in builder.events


class InterruptedBuild(StandIn):
    """Ctrl-C in the third build while the first push still runs and the second is queued."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.release = threading.Event()

    def build(self, name: str) -> ImageBuild:
        if name == NAMES[2]:
            threading.Timer(0.3, self.release.set).start()  # the running push ends later
            raise KeyboardInterrupt
        return super().build(name)

    def push(self, image: ImageBuild, env: Any) -> ImageBuild:
        if image.name == NAMES[0]:
            self.release.wait(5)
        self.events.append(f"pushed {image.name} to {env}")
        return image


def test_an_interrupted_build_cancels_the_pushes_not_yet_started() -> None:
    builder = InterruptedBuild(NAMES)
    with pytest.raises(KeyboardInterrupt):
        build_all(builder, NAMES, "dev")  # type: ignore[arg-type]
    # The running push finished (build_all waited for it); the queued one never started.
    assert "pushed extract to dev" in builder.events
    assert "pushed load to dev" not in builder.events
