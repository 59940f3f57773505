"""Supervisors: OTP's ``supervisor`` semantics on philipjose processes, with Elixir-style child specs.

Pure parts (no runtime needed): :mod:`.spec` (child specs and flags), :mod:`.strategy` (restart
decisions), :mod:`.intensity` (restart intensity), :mod:`.config` (trees from TOML). See
``docs/supervision.md``.
"""

from philipjose.supervisors.config import NodeConfig, SubtreeConfig, TreeConfig, load_config
from philipjose.supervisors.errors import ChildError, ConfigError, SpecError, StartError, SupervisorError
from philipjose.supervisors.spec import ChildSpec, SupFlags, child_spec, start_function

__all__ = [
    "ChildError",
    "ChildSpec",
    "ConfigError",
    "NodeConfig",
    "SpecError",
    "StartError",
    "SubtreeConfig",
    "SupFlags",
    "SupervisorError",
    "TreeConfig",
    "child_spec",
    "load_config",
    "start_function",
]
