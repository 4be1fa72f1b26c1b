"""A page's main choices in its URL, so that a link opens the same view. Each choice is read
from st.query_params once per session (before its widget exists, so the widget starts there)
and written back after the widget, so the address bar always shows the current view.
The values' spelling and checks live in ae.view_state."""
from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from ae.view_state import ViewValueError, format_offsets, parse_choice, parse_offsets

_READ = "_shared_view_read"  # the choices already taken from the URL in this session


def from_link(param: str, parse, once: str):
    """`parse(value)` of the URL's `param` the first time this session asks for `once`, else None.
    A bad or stale value gets a short note and None: the page keeps its default."""
    read = st.session_state.setdefault(_READ, set())
    if once in read:
        return None
    read.add(once)
    text = st.query_params.get(param)
    if text is None:
        return None
    try:
        return parse(text)
    except ViewValueError as exc:  # its message holds no text from the URL
        st.toast(f"The link's {param} was not used ({exc}): showing the default.", icon=":material/link_off:",
                 duration="long")
        return None


def linked_choice(param: str, options, once: str) -> str | None:
    """One of `options` from the URL (see from_link)."""
    return from_link(param, lambda text: parse_choice(text, list(options), param), once)


def linked_offsets(n: int, limit: float, once: str) -> list[float] | None:
    """`n` slider offsets in [-limit, limit] from the URL's "offsets" (see from_link)."""
    return from_link("offsets", lambda text: parse_offsets(text, n, limit), once)


def publish(param: str, text: str | None) -> None:
    """The current choice into the URL, None to leave it out (written only when it changed: each
    change is a message to the browser)."""
    if text is None:
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != text:
        st.query_params[param] = text


def publish_offsets(offsets) -> None:
    publish("offsets", format_offsets(offsets) or None)  # all zero: left out


def share_link(where=None) -> None:
    """The link to this view, with the copy button of st.code. st.context.url is the address the
    browser shows (so it is right behind a reverse proxy); without it, a link relative to the page."""
    query = urlencode(st.query_params.to_dict(), safe=":,")
    where = where or st.sidebar
    where.caption("Link to this view (the copy button is on its right)")
    where.code(f"{st.context.url or ''}?{query}", language=None, wrap_lines=True)
