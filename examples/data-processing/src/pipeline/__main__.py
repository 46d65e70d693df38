"""Entry point of the example ETL pipeline."""

print("pipeline ready")
