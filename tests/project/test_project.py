"""The project's own tests. The import below collects the toolkit's checks every project passes
(dataops.testing.project: DAG integrity, the DAG policy, dbt selections, smoke stages, Helm
values); `dataops ci run --stage unit` runs this folder. Add the team's own tests beside it;
exceptions to the DAG policy go in policy_exceptions.yml, with the reason."""

from dataops.testing.project import *  # noqa: F403
