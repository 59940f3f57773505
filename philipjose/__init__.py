"""philipjose: an Erlang-style actor runtime on Trio whose nodes speak the Erlang distribution
protocol, and a farmer that coordinates worker nodes.

See ``DESIGN`` notes in the docs folder; the public names are re-exported here.
"""

from philipjose._version import __version__
from philipjose.term import Atom, Pid, Port, Reference

__all__ = ["Atom", "Pid", "Port", "Reference", "__version__"]
