"""The Erlang io protocol on a Python node: group leaders, io servers, ``io:format`` both ways.

- Every runtime has a default io server (a group leader), started on first use; the ``io_output``
  and ``io_input`` options of ``pj.run`` / ``pj.node.start`` say where its output goes (stdout, a
  text stream, a ``logging.Logger``, a callable) and what reads get (``eof``, a ``str``, a stream).
- Processes that Python spawns on Erlang nodes (``rpc.call``, ``pj.node.spawn``) get the caller's
  group leader, so their ``io:format`` prints on the Python node; ``pj.group_leader()`` /
  ``pj.group_leader(gl, pid)`` are Erlang's ``group_leader/0,2``, and a GROUP_LEADER signal from
  another node is honoured.
- :func:`format`, :func:`put_chars`, :func:`get_line`, ... (``pj.io.format("~p~n", [x])``) write to
  and read from the group leader, like Erlang's ``io`` module; exposed functions called from
  another node run inside :func:`print_to_group_leader`, so their ``print()`` shows up on the
  caller's side.
- :func:`format_string` is ``io_lib:format/2`` (``~p``, ``~w``, ``~s``, ``~f``, ... as OTP lays them
  out), used by the io server for ``{put_chars, _, io_lib, format, [F, A]}``.

See ``docs/distribution.md`` (*Group leaders and the io protocol*) for what is and is not supported.
"""

from philipjose.io._format import FormatError
from philipjose.io._format import format as format_string
from philipjose.io.api import (
    IoError,
    format,
    fwrite,
    get_chars,
    get_line,
    getopts,
    nl,
    put_chars,
    request,
    setopts,
    write,
)
from philipjose.io.protocol import MFAS
from philipjose.io.server import start_server
from philipjose.io.stdout import Redirection, print_to_group_leader

__all__ = [
    "MFAS",
    "FormatError",
    "IoError",
    "Redirection",
    "format",
    "format_string",
    "fwrite",
    "get_chars",
    "get_line",
    "getopts",
    "nl",
    "print_to_group_leader",
    "put_chars",
    "request",
    "setopts",
    "start_server",
    "write",
]
