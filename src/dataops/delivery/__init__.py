"""The product's delivery features: releases and promotion, migrations, image builds, slim CI,
the CI stages and the git-push queue, DAG runs and the dbt docs site."""
