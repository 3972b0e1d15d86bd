"""`dataops schema`: the JSON Schemas of dataops.yml and the pipeline specs, for editors."""

from __future__ import annotations

import click

from dataops.cli.context import Context, pass_context

# json_schema.SCHEMAS, named here so that `dataops` starts without importing the models.
NAMES = ("dataops", "pipeline")


@click.command(short_help="The JSON Schemas of dataops.yml and the pipeline specs, for editors.")
@click.argument("name", required=False, type=click.Choice(NAMES))
@click.option(
    "--write",
    is_flag=True,
    help="Write the schema (both without NAME) to schemas/ beside dataops.yml instead of "
    "printing it; a file already up to date is left alone.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 when a file in schemas/ differs from what this dataops "
    "makes (for CI).",
)
@pass_context
def schema(ctx: Context, name: str | None, write: bool, check: bool) -> None:
    """Print or write the JSON Schema of dataops.yml (NAME `dataops`) or of a pipeline spec
    (NAME `pipeline`, dags/pipelines/*.yml), for editors to check and complete the files.

    The schemas are made from the models `dataops validate` checks the files with, with the
    keys as the files spell them; unknown keys are errors, as there. Without --write or
    --check the schema NAME is printed (JSON). --write keeps schemas/dataops.schema.json and
    schemas/pipeline.schema.json (beside dataops.yml) up to date and says which it wrote.

    Editors that use yaml-language-server (VS Code's YAML extension, and others) take the
    schema from a comment in the file, by convention its first line:

    \b
      dataops.yml:            # yaml-language-server: $schema=schemas/dataops.schema.json
      dags/pipelines/*.yml:   # yaml-language-server: $schema=../../schemas/pipeline.schema.json
    """
    from dataops.core.json_schema import SCHEMAS, render

    if not (write or check):
        if name is None:
            raise click.UsageError(
                "name the schema to print: `dataops schema dataops` or `dataops schema "
                "pipeline` (or --write to write both)"
            )
        click.echo(render(name), nl=False)
        return
    from dataops.cli.generated import sync_files
    from dataops.core.config import find_config

    # Found, not loaded: a dataops.yml that does not validate yet is what the schema helps fix.
    root = (ctx.config_path or find_config()).resolve().parent
    files = {str(SCHEMAS[each].path): render(each) for each in ([name] if name else NAMES)}
    sync_files(ctx, root, files, check, "this dataops", "dataops schema --write")


def register(group: click.Group) -> None:
    group.add_command(schema)
