"""Rows, enums and database helpers. Import tables from `models.tables`, enums from `models.enums`."""
