# `make demo` of a project `dataops init` created: the starter pipeline dev -> staging -> prod.
demo: up
	$(DATAOPS) migrate apply --env dev
	$(DATAOPS) images build --push --env dev
	$(DATAOPS) release create --env dev
	$(DATAOPS) data put data
	$(DATAOPS) run customers --env dev --date 2024-01-01
	$(DATAOPS) release check --env dev --name ci --passed --detail "make demo: every pipeline ran in dev"
	$(DATAOPS) promote --to staging
	$(DATAOPS) release smoke --env staging
	$(DATAOPS) promote --to prod --approve
	$(DATAOPS) run customers --env prod --date 2024-01-01
	$(DATAOPS) release list --env prod
	@echo
	@echo "Done: the release ran in dev, was promoted by digest to staging (smoke-tested there)"
	@echo "and to prod, where the pipeline ran on prod's own Airflow."
	@$(DATAOPS) up --no-install | grep -E "^(Airflow web UI|Logs)"
	@echo "Status: $(DATAOPS) status    Stop: $(DATAOPS) down"
