"""GenServer: OTP's gen_server behaviour as a Python class.

Callback convention (state lives on ``self``; every callback may be ``async def`` or plain ``def``;
requests are best atoms, which is what ``gen_server:call(S, get)`` from Erlang sends)::

    GET, LATER, STOP = Atom("get"), Atom("later"), Atom("stop")

    class Counter(pj.GenServer):
        async def init(self, start):               # args of start()/start_link()
            self.n = start
        async def handle_call(self, request, caller):
            if request == GET:
                return self.n                      # the return value is the reply
            if request == LATER:
                self.pending = caller
                return pj.NOREPLY                  # reply later with pj.reply(caller, value)
            if request == STOP:
                raise pj.Stop("normal", reply="bye")   # reply, then terminate("normal")
        async def handle_cast(self, msg):          # pj.cast(dest, msg); return value ignored
            self.n += msg
        async def handle_info(self, msg):          # any other message (default: log and ignore)
            ...
        async def terminate(self, reason):         # on Stop, Exit, a crash, or the parent's EXIT
            ...

    pid = await Counter.start_link(0, name="counter")
    await pj.call("counter", GET, timeout=5.0)

- A callback stops the server by raising (or returning) ``pj.Stop(reason, reply=...)`` or raising
  ``pj.Exit(reason)``; any other exception crashes it with the crash reason (see
  :mod:`philipjose.actors.reasons`). In all three cases ``terminate(reason)`` runs first, then the
  process exits with ``reason``. ``terminate`` is not called when the server is killed by an exit
  signal it does not trap.
- A server that traps exits (``pj.process_flag("trap_exit", True)`` in ``init``) and receives
  ``(EXIT, parent, reason)`` from the process that called ``start_link`` terminates with ``reason``
  (how a supervisor's ``shutdown`` reaches ``terminate``). Other EXIT messages go to ``handle_info``.
- Do not give ``__init__`` required arguments: the instance is made with ``cls()`` in the new process
  and ``init`` receives the start arguments.

Wire shapes are OTP's, so Erlang's ``gen_server:call/cast`` reach a Python server unchanged and
``pj.call`` works against an Erlang gen_server: calls are ``(Atom('$gen_call'), (pid, tag), request)``,
casts ``(Atom('$gen_cast'), msg)``, replies ``(tag, value)``. ``pj.call`` uses OTP 25 alias tags,
``ImproperList((Atom('alias'),), ref)``; ``pj.reply`` sends to the alias ``ref`` for such tags and to
``pid`` otherwise.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Any, Final

from philipjose.actors import api
from philipjose.actors._system import (
    SYSTEM,
    SystemState,
    charlist,
    handle_system,
    is_system,
    unencodable,
    wants_release,
)
from philipjose.actors.errors import BadArg, Exit, StartError, Stop
from philipjose.actors.process import Process
from philipjose.actors.reasons import DOWN, EXIT, KILL, NORMAL, crash_reason
from philipjose.actors.runtime import current_runtime
from philipjose.term import Atom, EncodeError, ImproperList, Pid, Reference

__all__ = ["NOREPLY", "Caller", "GenServer", "call", "cast", "reply"]

log: Final = logging.getLogger("philipjose.actors.genserver")

GEN_CALL: Final = Atom("$gen_call")
GEN_CAST: Final = Atom("$gen_cast")
_ALIAS: Final = Atom("alias")
_OK: Final = Atom("ok")
_ERROR: Final = Atom("error")
_ALREADY_STARTED: Final = Atom("already_started")
_GEN_SERVER: Final = Atom("gen_server")
_CALL: Final = Atom("call")
_CALLING_SELF: Final = Atom("calling_self")
_INFINITY: Final = Atom("infinity")
_DATA: Final = Atom("data")
_INIT: Final = Atom("init")
_STATE: Final = charlist("State")

#: ``(pid, tag)``: who made a call, as passed to ``handle_call``; give it to :func:`reply`.
Caller = tuple[Pid, Any]


class _NoReply:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOREPLY"


#: Returned by ``handle_call`` to reply later with :func:`reply`.
NOREPLY: Final = _NoReply()


async def _invoke(result: Any) -> Any:
    if inspect.isawaitable(result):
        return await result
    return result


class GenServer:
    """Base class of a generic server; see the module docstring for the callback convention."""

    @classmethod
    async def start(cls, *args: Any, name: Atom | str | None = None, timeout: float | None = 5.0) -> Pid:
        """Spawn the server, wait until ``init(*args)`` has returned, and return its pid.

        ``name`` registers it (before ``init`` runs). Raises :class:`StartError` when ``init`` fails
        (its exception chained as ``__cause__``) or when ``name`` is taken
        (``reason == (Atom('already_started'), pid)``), and ``TimeoutError`` when ``init`` takes longer
        than ``timeout`` seconds (``None``: wait forever; the server is then killed).
        """
        return await _start(cls, args, name, timeout, link=False)

    @classmethod
    async def start_link(cls, *args: Any, name: Atom | str | None = None, timeout: float | None = 5.0) -> Pid:
        """Like :meth:`start`, and the server is linked to the caller (atomically, at spawn).

        When ``init`` fails, the server unlinks from the caller before it exits, so the caller gets the
        :class:`StartError` and no exit signal.
        """
        return await _start(cls, args, name, timeout, link=True)

    async def init(self, *args: Any) -> None:
        """Set up the state from the start arguments (default: accept none)."""
        if args:
            raise TypeError(f"{type(self).__qualname__}.init takes no arguments, got {args!r}")

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        """Answer a call: return the reply, ``NOREPLY``, or raise/return ``Stop`` (default: crash)."""
        raise NotImplementedError(f"{type(self).__qualname__} does not handle calls (got {request!r})")

    async def handle_cast(self, msg: Any) -> Any:
        """Handle a cast (default: crash)."""
        raise NotImplementedError(f"{type(self).__qualname__} does not handle casts (got {msg!r})")

    async def handle_info(self, msg: Any) -> Any:
        """Handle any other message (default: log a warning and drop it)."""
        log.warning("%s %r received an unexpected message: %r", type(self).__qualname__, api.self(), msg)

    async def terminate(self, reason: Any) -> None:
        """Clean up before the server exits with ``reason`` (default: nothing)."""

    def system_get_state(self) -> Any:
        """The state ``sys:get_state`` reports (default: a ``dict`` copy of the instance's attributes,
        a map with binary keys for an Erlang caller). Override to report another term."""
        state = getattr(self, "__dict__", None)
        if state is not None:
            return dict(state)
        slots = (name for cls in type(self).__mro__ for name in getattr(cls, "__slots__", ()))
        return {name: getattr(self, name) for name in slots if hasattr(self, name)}

    def system_replace_state(self, fun: Any) -> Any:
        """Carry out ``sys:replace_state``: ``fun(state)`` becomes the state; return it. By default
        the new state must be a ``dict`` with ``str`` keys, which become the instance's attributes
        (all others are removed); raise to refuse, leaving the state unchanged."""
        new = fun(self.system_get_state())
        if not isinstance(new, dict) or not all(type(key) is str for key in new):
            name = type(self).__qualname__
            raise TypeError(f"the new state of a {name} must be a dict of attributes, not {new!r}")
        state = getattr(self, "__dict__", None)
        if state is None:
            raise TypeError(f"{type(self).__qualname__} has no __dict__: override system_replace_state")
        state.clear()
        state.update(new)
        return dict(new)


async def _start(
    cls: type[GenServer], args: tuple[Any, ...], name: Any, timeout: float | None, *, link: bool
) -> Pid:
    if not (isinstance(cls, type) and issubclass(cls, GenServer)):
        raise TypeError(f"{cls!r} is not a GenServer subclass")
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"start timeout must be >= 0 or None, not {timeout!r}")
    if name is not None and not isinstance(name, str):
        raise BadArg(f"a server name must be an atom or str, not {name!r}")
    me = api._me()
    rt = me.rt
    ack = rt.make_ref()
    pid, mref = rt.spawn(_serve, (cls, args, name, me.pid, ack, link), link=me if link else None, monitor=me)
    assert mref is not None
    mark = len(me.queue or ())

    def answer(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        return (len(m) == 3 and m[0] == ack) or (len(m) == 5 and m[0] == DOWN and m[1] == mref)

    try:
        msg = await api.receive_from(me, answer, mark, timeout)
    except TimeoutError:
        rt.unlink(me, pid)
        rt.exit(me.pid, pid, KILL)
        raise TimeoutError(f"{cls.__qualname__}.init did not finish within {timeout} s") from None
    finally:
        rt.demonitor(me, mref, flush=True)
    if msg[0] == DOWN:
        raise StartError(msg[4])
    _, status, detail = msg
    if status == _OK:
        return pid
    reason, exc = detail
    raise StartError(reason) from exc


async def _serve(
    cls: type[GenServer], args: tuple[Any, ...], name: Any, parent: Pid, ack: Reference, linked: bool
) -> None:
    me = api._me()
    rt = me.rt
    if name is not None:
        try:
            rt.register(name, me.pid)
        except BadArg:
            holder = rt.whereis(name)
            api.send(parent, (ack, _ERROR, ((_ALREADY_STARTED, holder), None)))
            if linked:
                rt.unlink(me, parent)
            return
    server = cls()
    try:
        result = await _invoke(server.init(*args))
        if isinstance(result, Stop):
            raise result
    except (Stop, Exit) as exc:
        api.send(parent, (ack, _ERROR, (exc.reason, exc)))
        if linked:
            rt.unlink(me, parent)
        raise Exit(exc.reason) from None
    except Exception as exc:
        api.send(parent, (ack, _ERROR, (crash_reason(exc), exc)))
        if linked:
            rt.unlink(me, parent)
        raise
    api.send(parent, (ack, _OK, None))
    await _loop(server, me, parent if linked else None, parent)


async def _loop(server: GenServer, me: Process, parent: Pid | None, starter: Pid) -> None:
    receive = api.receive
    system = SystemState()

    def suspended_match(m: Any) -> bool:  # a suspended server takes only these
        return is_system(m) or (
            type(m) is tuple and len(m) == 3 and m[0] == EXIT and m[1] == parent and me.trap_exit
        )

    while True:
        msg = await (receive(match=suspended_match) if system.suspended else receive())
        caller: Caller | None = None
        try:
            if type(msg) is tuple and msg:
                kind = msg[0]
                if kind == GEN_CALL and len(msg) == 3 and type(msg[1]) is tuple and len(msg[1]) == 2:
                    caller = msg[1]
                    result = await _invoke(server.handle_call(msg[2], msg[1]))
                    if isinstance(result, Stop):
                        raise result
                    if result is not NOREPLY:
                        reply(msg[1], result)
                    continue
                if kind == GEN_CAST and len(msg) == 2:
                    result = await _invoke(server.handle_cast(msg[1]))
                    if isinstance(result, Stop):
                        raise result
                    continue
                if kind == SYSTEM and is_system(msg):
                    await _system(server, me, parent, starter, system, msg)
                    if system.terminating:
                        raise Stop(system.reason)
                    continue
                if kind == EXIT and len(msg) == 3 and msg[1] == parent and me.trap_exit:
                    raise Exit(msg[2])  # the parent (start_link's caller) is going away
            result = await _invoke(server.handle_info(msg))
            if isinstance(result, Stop):
                raise result
        except Stop as stop:
            if stop.has_reply and caller is not None:
                reply(caller, stop.reply)
            await _terminate(server, stop.reason)
            if stop.reason == NORMAL:
                return
            raise Exit(stop.reason) from None
        except Exit as exc:
            await _terminate(server, exc.reason)
            raise
        except Exception as exc:
            exc.add_note(f"{type(server).__qualname__} {me.pid!r} was handling the message {msg!r}")
            reason = crash_reason(exc)
            await _terminate(server, reason)
            raise Exit(reason) from exc  # the same reason terminate saw; logged as a crash


async def _system(
    server: GenServer, me: Process, parent: Pid | None, starter: Pid, system: SystemState, msg: Any
) -> None:
    """Answer one ``{system, From, Request}`` as gen_server does (see :mod:`philipjose.actors.sys`)."""
    cls = type(server)
    request = msg[2]
    ok_state = await wants_ok_state(msg[1][0], request)
    answer = handle_system(
        request,
        system,
        get_state=server.system_get_state,
        replace_state=server.system_replace_state,
        status_data=lambda: [(_DATA, [(_STATE, server.system_get_state())])],
        pid=me.pid,
        name=me.name,
        parent=me.pid if parent is None else parent,
        ancestors=[starter],
        module=_GEN_SERVER,
        initial_call=(Atom(f"{cls.__module__}.{cls.__qualname__}"), _INIT, 1),
        ok_state=ok_state,
    )
    reply_system(msg[1], request, answer)


# The OTP release of the nodes that sent system messages, by (node, creation): OTP 26 changed the
# reply to get_state/replace_state from State to {ok, State}, and nothing in the handshake tells the
# releases apart, so the first such request from a node asks that node's rex (one round trip).
_RELEASES: dict[tuple[Atom, int], int | None] = {}
_OK_STATE_SINCE: Final = 26
_REX: Final = Atom("rex")
_RELEASE_CALL: Final = (Atom("call"), Atom("erlang"), Atom("system_info"), [Atom("otp_release")])


async def wants_ok_state(caller: Any, request: Any) -> bool:
    """Whether the ``sys`` ``request`` of the process ``caller`` is answered ``{ok, State}`` (OTP 26+,
    a philipjose process, a node whose release cannot be learnt) or with the bare ``State`` (OTP 25
    and older), for the requests where the two differ (:func:`~._system.wants_release`)."""
    if not wants_release(request) or type(caller) is not Pid:
        return True
    release = await otp_release(caller.node, caller.creation)
    return release is None or release >= _OK_STATE_SINCE


async def otp_release(node: Atom, creation: int | None = None) -> int | None:
    """The OTP release of ``node`` (``erlang:system_info(otp_release)`` asked of its ``rex``), or
    None for this node, a philipjose node (its rex serves only exposed functions) or a node that
    does not answer within 2 s. Remembered by ``(node, creation)`` when ``creation`` is given."""
    if current_runtime().is_local_node(node):
        return None
    key = (node, creation) if creation is not None else None
    if key is not None and key in _RELEASES:
        return _RELEASES[key]
    try:
        answer = await call((_REX, node), (*_RELEASE_CALL, api.self()), timeout=2.0)
    except (Exit, TimeoutError):
        answer = None
    release: int | None = None
    if type(answer) is list and answer and all(type(c) is int and 48 <= c <= 57 for c in answer):
        release = int(bytes(answer).decode())
    elif isinstance(answer, bytes | str) and answer.isdigit():  # under a node's binaries="str" option
        release = int(answer)
    if key is not None:
        if len(_RELEASES) >= 4096:
            _RELEASES.clear()
        _RELEASES[key] = release
    return release


def reply_system(caller: Caller, request: Any, answer: Any) -> None:
    """Reply ``answer`` to a system ``request``; when it cannot be encoded for a caller on another
    node (a state holding Python objects), reply what :func:`~._system.unencodable` gives instead."""
    try:
        reply(caller, answer)
    except EncodeError:
        with contextlib.suppress(EncodeError):
            reply(caller, unencodable(request, answer))


async def _terminate(server: GenServer, reason: Any) -> None:
    try:
        await _invoke(server.terminate(reason))
    except Exception:
        log.exception("%s.terminate(%r) raised", type(server).__qualname__, reason)


def reply(caller: Caller, value: Any) -> None:
    """Send ``value`` as the reply to a call (``caller`` is the ``(pid, tag)`` given to handle_call).

    For an OTP 25 alias tag ``[alias | Ref]`` the reply goes to the alias ``Ref``, else to ``pid``.
    """
    if type(caller) is not tuple or len(caller) != 2:
        raise BadArg(f"reply expects the caller (pid, tag) given to handle_call, not {caller!r}")
    pid, tag = caller
    rt = current_runtime()
    if type(tag) is ImproperList and tag.elements == (_ALIAS,) and isinstance(tag.tail, Reference):
        rt.send(tag.tail, (tag, value))
    else:
        rt.send(pid, (tag, value))


def cast(dest: Any, msg: Any) -> None:
    """Send ``(Atom('$gen_cast'), msg)`` to ``dest``; never fails, never blocks (like OTP's cast)."""
    with contextlib.suppress(BadArg):
        current_runtime().send(dest, (GEN_CAST, msg))


async def call(dest: Any, request: Any, timeout: float | None = 5.0) -> Any:
    """Call the server ``dest`` (pid, name or ``(name, node)``) and return its reply.

    The server is monitored for the call: when it is dead, or dies before replying, this raises
    ``pj.Exit((reason, (Atom('gen_server'), Atom('call'), [dest, request, timeout])))`` at once, as OTP
    exits the caller (``reason`` is ``noproc`` for a missing server, ``noconnection`` when its node is
    unreachable). After ``timeout`` seconds (``None`` = forever) it raises ``TimeoutError``; a reply
    arriving later is dropped (the call's alias is deactivated and its monitor flushed). Calling
    oneself raises ``Exit((calling_self, ...))``. A negative timeout raises ``ValueError``.
    """
    if timeout is not None and not timeout >= 0:
        raise ValueError(f"call timeout must be >= 0 or None, not {timeout!r}")
    where = (_GEN_SERVER, _CALL, [dest, request, _INFINITY if timeout is None else timeout])
    return await gen_call(dest, GEN_CALL, request, timeout, where, f"call to {dest!r}")


async def gen_call(dest: Any, label: Atom, request: Any, timeout: float | None, where: Any, what: str) -> Any:
    """OTP's ``gen:call(Dest, Label, Request, Timeout)`` (internal): send ``(label, (self, tag),
    request)`` with an alias tag, wait for ``(tag, reply)`` while monitoring ``dest``, and raise
    ``Exit((reason, where))`` (dead server, calling oneself) or ``TimeoutError`` (``what`` timed out)."""
    me = api._me()
    rt = me.rt
    target = dest
    if isinstance(dest, str):
        target = rt.whereis(dest) or dest
    if target == me.pid:
        raise Exit((_CALLING_SELF, where))
    mark = len(me.queue or ())
    mref = rt.monitor(me, dest)
    rt.alias(me, mref)
    tag = ImproperList((_ALIAS,), mref)
    with contextlib.suppress(BadArg):  # an unregistered name: the monitor has queued DOWN noproc
        rt.send(dest, (label, (me.pid, tag), request))

    def answer(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        n = len(m)
        return (n == 2 and m[0] == tag) or (n == 5 and m[1] == mref and m[0] == DOWN)

    try:
        msg = await api.receive_from(me, answer, mark, timeout)
    except TimeoutError:
        raise TimeoutError(f"{what} timed out after {timeout} s") from None
    finally:
        rt.unalias(me, mref)
        rt.demonitor(me, mref, flush=True)
    if len(msg) == 2:
        return msg[1]
    raise Exit((msg[4], where))
