"""The reference project's own tests: the toolkit's checks every project passes
(dataops.testing.project), collected by the import below. Add the team's own tests beside it;
exceptions to the DAG policy go in policy_exceptions.yml, with the reason."""

from dataops.testing.project import *  # noqa: F403
