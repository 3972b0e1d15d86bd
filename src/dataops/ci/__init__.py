"""CI: the stages of `dataops ci run`, a bare git repo as a CI remote, slim dbt CI, reports."""
