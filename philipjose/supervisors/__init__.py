"""Supervisors: OTP's ``supervisor`` semantics on philipjose processes, with Elixir-style child specs.

::

    from philipjose import supervisors

    sup = await supervisors.start_link(
        [{"id": "db", "start": (Db, "url")}, {"id": "web", "start": (serve, 8080)}],
        strategy="rest_for_one", intensity=3, period=5,
    )
    await supervisors.which_children(sup)

Pure parts (no runtime needed): :mod:`.spec` (child specs and flags), :mod:`.strategy` (restart
decisions), :mod:`.intensity` (restart intensity), :mod:`.config` (trees from TOML). The supervisor
process is :mod:`.supervisor`; the functions that start and query it are in :mod:`.api`. See
``docs/supervision.md``.
"""

from philipjose.supervisors.api import (
    count_children,
    delete_child,
    get_childspec,
    restart_child,
    start,
    start_child,
    start_dynamic,
    start_dynamic_link,
    start_link,
    stop,
    terminate_child,
    which_children,
)
from philipjose.supervisors.config import NodeConfig, SubtreeConfig, TreeConfig, load_config
from philipjose.supervisors.errors import ChildError, ConfigError, SpecError, StartError, SupervisorError
from philipjose.supervisors.spec import ChildSpec, SupFlags, child_spec, start_function
from philipjose.supervisors.supervisor import ChildInfo
from philipjose.supervisors.tree import from_config, start_tree, supervisor_spec

__all__ = [
    "ChildError",
    "ChildInfo",
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
    "count_children",
    "delete_child",
    "from_config",
    "get_childspec",
    "load_config",
    "restart_child",
    "start",
    "start_child",
    "start_dynamic",
    "start_dynamic_link",
    "start_function",
    "start_link",
    "start_tree",
    "stop",
    "supervisor_spec",
    "terminate_child",
    "which_children",
]
