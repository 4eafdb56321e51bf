"""Config: composing (the tree ships in ``rlvr.conf``), resolvers, and the one validation that runs before
anything loads (every ``_target_`` node against its target's signature, :mod:`rlvr.config.validate`)."""

from rlvr.config.compose import CONFIG_MODULE, CONFIG_PATH, load_config, open_overrides
from rlvr.config.messages import exit_on_config_error, fail, one_line
from rlvr.config.resolvers import register_resolvers
from rlvr.config.validate import (
           build,
           check_value,
           import_target,
           validate,
           with_defaults,
)

__all__ = ["CONFIG_MODULE", "CONFIG_PATH", "build", "check_value", "exit_on_config_error", "fail", "import_target",
           "load_config", "one_line", "open_overrides", "register_resolvers", "validate", "with_defaults"]
