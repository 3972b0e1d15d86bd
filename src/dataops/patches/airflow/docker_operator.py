"""The task operators' two patches of Airflow's operator internals (`dataops.airflow.operators`).

Targets apache-airflow 3.3.2: apache-airflow-task-sdk 1.3.2 (BaseOperator) and
apache-airflow-providers-docker 4.6.1 (DockerOperator).

1. No failed converter lookup per attribute set. `BaseOperator.__setattr__` (task SDK 1.3.2,
   airflow/sdk/bases/operator.py) looks up a private class attribute `_convert_<name>` (a
   converter applied to the value) for every attribute set, about 110 per task as it is made,
   and for all but six the lookup fails (Python raises and catches AttributeError inside
   getattr), a share of every parse (bench/bench_dag_parse.py measures it).
   `declare_no_converters` sets `_convert_<name> = None` on the operator class for
   each name of `NO_CONVERTER_NAMES` that has no converter; found as None, it does what a miss
   does: nothing. A name that has a converter anywhere in the class's MRO keeps it (checked
   against the Airflow installed), so converting is unchanged. The names are the attributes set
   on a task as the factory makes it (BaseOperator's and DockerOperator's private and public
   ones, and the toolkit's warehouse_conn_id): a list, not worked out from the classes'
   signatures at import, as the dag-processor imports the operators afresh for every file it
   parses and working it out costs more than it saves. tests/dags/test_parse_cost.py
   fails, naming the attribute, when a new Airflow sets one that is not here.

2. The Docker hook without the registry login. DockerOperator's `hook` (provider 4.6.1,
   airflow/providers/docker/operators/docker.py) is a `functools.cached_property` whose
   function makes a DockerHook that logs in to the registry when the operator has a
   docker_conn_id. `hook_without_login` calls that function (the cached_property's private
   `func`) with docker_conn_id unset for the call; `set_login_hook` stores the provider's own
   logged-in hook in the instance's `__dict__`, where cached_property keeps its value.
   tests/dags/test_registry_login.py runs the provider's own execute around both.
"""

from __future__ import annotations

from functools import cached_property

from airflow.providers.docker.hooks.docker import DockerHook
from airflow.providers.docker.operators.docker import DockerOperator

from dataops.patches.airflow import DOCKER_PROVIDER, TASK_SDK

TARGETS = (TASK_SDK, DOCKER_PROVIDER)
UPGRADE_CHECK = (
    "airflow/sdk/bases/operator.py: BaseOperator.__setattr__ still looks up "
    "`_convert_<name>` (getattr(self, f'_convert_{key}', None)) and treats None as no converter; "
    "tests/dags/test_parse_cost.py names any attribute a task now sets that NO_CONVERTER_NAMES "
    "lacks (add it) and checks the tasks are still the ones Airflow makes. "
    "airflow/providers/docker/operators/docker.py: DockerOperator.hook is still a "
    "functools.cached_property whose function builds the DockerHook from self.docker_conn_id, "
    "and execute still pulls through self.cli when force_pull or the image is missing; "
    "run tests/dags/test_registry_login.py"
)

# The attributes set on a task as the factory makes it that have no converter (Airflow 3.3.2's
# BaseOperator and DockerOperator, and the toolkit's warehouse_conn_id).
NO_CONVERTER_NAMES = (
    "_logger_name",
    "_post_execute_hook",
    "_pre_execute_hook",
    "_private_environment",
    "_task_display_name",
    "allow_nested_operators",
    "api_version",
    "auto_remove",
    "cap_add",
    "command",
    "container",
    "container_name",
    "cpus",
    "dag",
    "depends_on_past",
    "device_requests",
    "dns",
    "dns_search",
    "do_xcom_push",
    "doc",
    "doc_json",
    "doc_md",
    "doc_rst",
    "doc_yaml",
    "docker_conn_id",
    "docker_url",
    "downstream_task_ids",
    "email",
    "email_on_failure",
    "email_on_retry",
    "end_date",
    "entrypoint",
    "env_file",
    "environment",
    "execution_timeout",
    "executor",
    "executor_config",
    "extra_hosts",
    "force_pull",
    "host_tmp_dir",
    "hostname",
    "ignore_first_depends_on_past",
    "image",
    "inlets",
    "ipc_mode",
    "labels",
    "log_opts_max_file",
    "log_opts_max_size",
    "map_index_template",
    "max_active_tis_per_dag",
    "max_active_tis_per_dagrun",
    "mem_limit",
    "mount_tmp_dir",
    "mounts",
    "multiple_outputs",
    "network_mode",
    "on_execute_callback",
    "on_failure_callback",
    "on_retry_callback",
    "on_skipped_callback",
    "on_success_callback",
    "outlets",
    "owner",
    "params",
    "pool",
    "pool_slots",
    "port_bindings",
    "priority_weight",
    "privileged",
    "queue",
    "render_template_as_native_obj",
    "retrieve_output",
    "retrieve_output_path",
    "retry_exponential_backoff",
    "retry_policy",
    "run_as_user",
    "shm_size",
    "skip_on_exit_code",
    "start_date",
    "task_group",
    "task_id",
    "timeout",
    "tls_ca_cert",
    "tls_client_cert",
    "tls_client_key",
    "tls_hostname",
    "tls_ssl_version",
    "tls_verify",
    "tmp_dir",
    "trigger_rule",
    "tty",
    "ulimits",
    "upstream_task_ids",
    "user",
    "wait_for_downstream",
    "wait_for_past_depends_before_skipping",
    "warehouse_conn_id",
    "weight_rule",
    "working_dir",
    "xcom_all",
)


def declare_no_converters(cls: type, names: tuple[str, ...]) -> frozenset[str]:
    """Give `cls` a `_convert_<name> = None` for each of `names` that has no converter, and
    return those names."""
    declared = frozenset(n for n in names if getattr(cls, f"_convert_{n}", None) is None)
    for name in declared:
        setattr(cls, f"_convert_{name}", None)
    return declared


# DockerOperator's own `hook` (a cached_property): the hook it makes, logging in when it has a
# docker_conn_id.
_PROVIDER_HOOK: cached_property[DockerHook] = DockerOperator.__dict__["hook"]


def hook_without_login(operator: DockerOperator) -> DockerHook:
    """The hook DockerOperator makes, made as if the operator had no docker_conn_id (no login)."""
    conn_id, operator.docker_conn_id = operator.docker_conn_id, None
    try:
        return _PROVIDER_HOOK.func(operator)
    finally:
        operator.docker_conn_id = conn_id


def set_login_hook(operator: DockerOperator) -> None:
    """Make the operator's `hook` (and so its `cli`) the provider's own, logged in with its
    docker_conn_id (a new client, as the provider makes it)."""
    operator.__dict__["hook"] = _PROVIDER_HOOK.func(operator)
