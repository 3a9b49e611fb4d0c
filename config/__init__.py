"""Typed configuration: schema (pydantic), loader with one-line errors, environment and secrets."""

from config.loader import ConfigError, LoadedConfig, load_config
from config.schema import Settings

__all__ = ["ConfigError", "LoadedConfig", "Settings", "load_config"]
