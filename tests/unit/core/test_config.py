from __future__ import annotations

from pathlib import Path

import pytest

from dataops.core.config import load_config
from dataops.errors import ConfigError, ExitCode
from tests.conftest import PROJECT

SHIPPED = (PROJECT / "dataops.yml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dataops.yml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_config_is_valid() -> None:
    loaded = load_config(PROJECT / "dataops.yml")
    assert set(loaded.config.environments) == {"dev", "staging", "prod"}
    prod = loaded.config.environments["prod"]
    assert prod.registry.address == "127.0.0.1:5003"
    assert prod.gates.require_approval and prod.gates.promote_from == "staging"
    assert loaded.config.environments["dev"].warehouse.database == "warehouse_dev"


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    text = SHIPPED.replace("      address: 127.0.0.1:5002", "      adress: 127.0.0.1:5002")
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    line = line_of(text, "adress:")
    message = str(caught.value)
    assert (
        f"dataops.yml:{line}:7: environments.staging.registry.adress: unknown key 'adress'"
        in message
    )
    assert "did you mean 'address'?" in message
    assert "allowed here: address, auth, username, password_env, tls" in message
    assert caught.value.exit_code is ExitCode.USAGE


def test_inline_secret_is_refused_with_the_way_to_do_it(tmp_path: Path) -> None:
    text = SHIPPED.replace(
        "      password_env: DATAOPS_REGISTRY_PROD_PASSWORD",
        "      password: hunter2",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert f":{line_of(text, 'password: hunter2')}:7: environments.prod.registry.password" in str(
        caught.value
    )
    assert "password_env: VARIABLE_NAME" in str(caught.value)


def test_every_problem_is_listed_in_file_order(tmp_path: Path) -> None:
    text = SHIPPED.replace("version: 1", "version: 2").replace(
        "parallelism: auto", "parallelism: lots"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("3 problems in")  # staging runs Celery: no parallelism there
    assert "version: 2 is not allowed" in lines[1]
    for line, env in zip(lines[2:4], ("dev", "prod"), strict=True):
        assert f"environments.{env}.airflow.parallelism: 'lots' is not allowed" in line


def test_missing_environment_and_bad_reference(tmp_path: Path) -> None:
    text = SHIPPED.replace("promote_from: staging", "promote_from: qa")
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        load_config(write(tmp_path, text))


def test_bad_env_var_name_and_address(tmp_path: Path) -> None:
    text = SHIPPED.replace("DATAOPS_REGISTRY_PROD_PASSWORD", "lower-case").replace(
        "127.0.0.1:5001", "http://127.0.0.1:5001"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert "environments.dev.registry.address: 'http://127.0.0.1:5001' does not match" in message
    assert "environments.prod.registry.password_env: 'lower-case' does not match" in message


def test_missing_env_var_reference_names_variable_and_line() -> None:
    loaded = load_config(PROJECT / "dataops.yml")
    path = ("environments", "staging", "registry", "password_env")
    with pytest.raises(ConfigError) as caught:
        loaded.resolve_secret(path, environ={})
    line = line_of(SHIPPED, "password_env: DATAOPS_REGISTRY_STAGING_PASSWORD")
    message = str(caught.value)
    assert f"dataops.yml:{line}:" in message
    assert "DATAOPS_REGISTRY_STAGING_PASSWORD, which is not set" in message
    assert loaded.resolve_secret(path, environ={"DATAOPS_REGISTRY_STAGING_PASSWORD": "s3"}) == "s3"


def test_top_level_extension_keys_are_allowed() -> None:
    # The shipped file uses x-warehouse / x-airflow anchors; they are not part of the schema.
    assert "x-warehouse" in SHIPPED
    assert load_config(PROJECT / "dataops.yml").config.project == "flights"


def test_environments_sharing_a_warehouse_role_are_refused(tmp_path: Path) -> None:
    text = SHIPPED.replace("user: dataops_prod", "user: dataops_staging")
    with pytest.raises(ConfigError, match=r"prod\.warehouse\.user 'dataops_staging' is also"):
        load_config(write(tmp_path, text))


def test_the_admin_role_is_no_environments_role(tmp_path: Path) -> None:
    text = SHIPPED.replace("user: dataops_dev", "user: dataops")
    with pytest.raises(ConfigError, match=r"environments\.dev\.warehouse\.user is 'dataops'"):
        load_config(write(tmp_path, text))


CELERY = "      executor: celery   "


def test_the_shipped_staging_runs_celery_with_two_workers_on_its_own_broker() -> None:
    staging = load_config(PROJECT / "dataops.yml").config.environments["staging"].airflow
    assert staging.executor == "celery" and staging.celery is not None
    assert [w.name for w in staging.celery.workers] == ["worker-1", "worker-2"]
    assert staging.queues == {"default", "heavy"}
    assert staging.celery.visibility_timeout_seconds > 24 * 3600  # longer than any task
    assert load_config(PROJECT / "dataops.yml").config.environments["dev"].airflow.queues == set()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (CELERY, "      executor: local", "`celery:` is set but executor is local"),
        (
            "      celery:\n",
            "      parallelism: 4\n      celery:\n",
            "parallelism is for LocalExecutor",
        ),
        (
            "{name: worker-2, queues: [default, heavy]}",
            "{name: worker-1, queues: [default]}",
            "the name(s) worker-1 appear twice",
        ),
        ("queues: [default, heavy]}", "queues: []}", "queues"),
        (
            "      celery:\n",
            "      celery:\n        broker_password_env: DATAOPS_WAREHOUSE_PROD_PASSWORD\n",
            "is also a password of prod: the broker needs a secret of its own",
        ),
    ],
)
def test_celery_settings_are_checked(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in SHIPPED
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, SHIPPED.replace(old, new, 1)))
    assert message in str(caught.value)


def test_celery_needs_its_section_and_a_broker_of_its_own(tmp_path: Path) -> None:
    prod_celery = SHIPPED.replace(
        "      password_env: DATAOPS_AIRFLOW_PROD_PASSWORD\n      parallelism: auto",
        "      password_env: DATAOPS_AIRFLOW_PROD_PASSWORD\n      executor: celery\n"
        "      celery: {broker_port: 6381}",
    )
    assert prod_celery != SHIPPED
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, prod_celery))
    assert "prod.airflow.celery.broker_port 6381 is also staging's" in str(caught.value)
    bare = SHIPPED.replace(
        "      password_env: DATAOPS_AIRFLOW_PROD_PASSWORD\n      parallelism: auto",
        "      password_env: DATAOPS_AIRFLOW_PROD_PASSWORD\n      executor: celery",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, bare))
    assert "executor: celery needs a `celery:` section" in str(caught.value)
