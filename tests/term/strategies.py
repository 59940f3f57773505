"""Hypothesis strategies for Python values that round-trip through the term codec unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from philipjose.term import (
    Atom,
    BitString,
    ExportFun,
    ImproperList,
    List,
    Map,
    Pid,
    Port,
    Reference,
)

u32 = st.integers(0, 2**32 - 1)
atom_text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=255).filter(
    lambda s: s not in ("true", "false")
)
atoms = atom_text.map(Atom)
nodes = st.sampled_from(["a@b", "node@host", "nonode@nohost", "\u00e9@x"]).map(Atom)
ints = st.one_of(
    st.integers(0, 255),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**70), 2**70),
    st.integers(-(2**3000), 2**3000),
)
floats = st.floats(allow_nan=False, allow_infinity=False)
bitstrings = st.builds(BitString, st.binary(min_size=1, max_size=9), st.integers(1, 7))
pids = st.builds(Pid, nodes, u32, u32, u32)
ports = st.builds(Port, nodes, st.integers(0, 2**64 - 1), u32)
refs = st.builds(Reference, nodes, u32, st.lists(u32, min_size=1, max_size=5).map(tuple))
exports = st.builds(ExportFun, atoms, atoms, st.integers(0, 255))

# Scalars that stay distinct as dict keys (no floats or booleans, which Python merges with ints).
key_scalars = st.one_of(ints, atoms, st.binary(max_size=20), pids, refs, ports, bitstrings)
scalars = st.one_of(key_scalars, floats, st.booleans(), exports)


def _hashable(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4).map(tuple),
        st.lists(children, max_size=4).map(List),
        st.dictionaries(children, children, max_size=3).map(Map),
    )


keys = st.recursive(key_scalars, _hashable, max_leaves=8)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(keys, children, max_size=5),
        st.builds(
            ImproperList,
            st.lists(children, min_size=1, max_size=4).map(tuple),
            st.one_of(scalars, st.lists(children, max_size=2).map(tuple)),
        ),
    )


terms = st.recursive(scalars, _containers, max_leaves=40)
