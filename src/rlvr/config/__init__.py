"""Config schemas (from component signatures), resolvers, and checks that run before anything loads."""

from rlvr.config.registry import load_config, register_configs
from rlvr.config.schema import ConfigError, check_choices, missing_keys, schema_of

__all__ = ["ConfigError", "check_choices", "load_config", "missing_keys", "register_configs", "schema_of"]
