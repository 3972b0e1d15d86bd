"""The task operator logs in to its environment's registry only when the image must be pulled:
the provider's hook logs in for every task, and each login makes the registry check the password
(bcrypt). The Docker provider's own DockerOperator code runs; only its hook class is replaced
by one that records how it was made and what the engine has."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.docker.operators import docker as provider

from dataops.airflow.operators import TaskContainerOperator

IMAGE = "127.0.0.1:5003/dataops/load@sha256:" + "ab" * 32


class Engine:
    """What the Docker engine holds, and every hook made (its docker_conn_id)."""

    def __init__(self, images: list[str]) -> None:
        self.images, self.hooks = images, list[str | None]()


def fake_hook(engine: Engine) -> type:
    class Client:
        def __init__(self, login: str | None) -> None:
            self.login = login

        def images(self, name: str) -> list[dict[str, Any]]:
            return [{"RepoDigests": [name]}] if name in engine.images else []

    class Hook:
        def __init__(self, docker_conn_id: str | None, **kwargs: Any) -> None:
            engine.hooks.append(docker_conn_id)
            self.api_client = Client(docker_conn_id)

        @staticmethod
        def construct_tls_config(**kwargs: Any) -> bool:
            return False

    return Hook


def operator(**kwargs: Any) -> TaskContainerOperator:
    return TaskContainerOperator(task_id="load", image=IMAGE, command=["load"], **kwargs)


@pytest.mark.parametrize("force_pull", [False, True])
def test_an_image_the_engine_has_runs_without_a_login_unless_pulled_anyway(
    monkeypatch: pytest.MonkeyPatch, force_pull: bool
) -> None:
    engine = Engine([IMAGE])
    monkeypatch.setattr(provider, "DockerHook", fake_hook(engine))
    op = operator(docker_conn_id="registry_prod", force_pull=force_pull)
    op._login_if_pulling()
    if force_pull:  # no need to ask the engine: DockerOperator pulls
        assert engine.hooks == ["registry_prod"]
        assert op.cli.login == "registry_prod"  # the client that pulls is the logged-in one
    else:
        assert engine.hooks == [None] and op.cli.login is None
    assert op.docker_conn_id == "registry_prod"  # the operator's field is left as it was


def test_an_image_the_engine_lacks_is_pulled_by_a_logged_in_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine([])
    monkeypatch.setattr(provider, "DockerHook", fake_hook(engine))
    op = operator(docker_conn_id="registry_prod")
    op._login_if_pulling()
    assert engine.hooks == [None, "registry_prod"]
    assert op.cli.login == "registry_prod"
    assert op.cli.images(name=IMAGE) == []  # DockerOperator.execute pulls with it


def test_a_registry_without_a_login_never_makes_a_second_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine([])
    monkeypatch.setattr(provider, "DockerHook", fake_hook(engine))
    op = operator()  # dev's registry needs no login
    op._login_if_pulling()
    assert engine.hooks == []  # not even the check: DockerOperator.execute makes the client
    assert op.cli.login is None and engine.hooks == [None]


@pytest.mark.parametrize("local", [True, False])
def test_the_provider_execute_gets_the_client_the_image_needs(
    monkeypatch: pytest.MonkeyPatch, local: bool
) -> None:
    """Through the operator's own execute path: DockerOperator.execute (which pulls when the
    engine lacks the image) runs with the logged-in client exactly when the image is missing."""
    engine = Engine([IMAGE] if local else [])
    monkeypatch.setattr(provider, "DockerHook", fake_hook(engine))
    seen: list[str | None] = []

    def execute(self: TaskContainerOperator, context: Any) -> str:
        seen.append(self.cli.login)
        return '{"step": "load"}'

    monkeypatch.setattr(provider.DockerOperator, "execute", execute)
    op = operator(docker_conn_id="registry_prod")
    assert op._execute({}) == '{"step": "load"}'
    assert seen == [None if local else "registry_prod"]
