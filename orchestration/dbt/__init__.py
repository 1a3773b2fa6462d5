"""The dbt project (rating) as Dagster assets."""
