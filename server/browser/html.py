"""A tiny HTML builder that escapes by construction: text and attribute values are escaped unless already Html.

Model names, feature and class names and reasons come from users' files and clients' paths; building every
element through h() means forgetting to escape one is not possible, which is what a template engine's autoescape
would give us, without a dependency for a handful of pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Union

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


class Html(str):
    """Markup that is safe as it is: h() and join() never escape it again."""


Child = Union[str, int, float, "Html", Iterable["Child"], None]


def text(value: object) -> Html:
    """`value` as escaped text (Html passes through)."""
    return value if isinstance(value, Html) else Html(escape(str(value), quote=True))


def join(children: Iterable[Child], sep: str = "") -> Html:
    """Children one after another (strings escaped; None and False left out; nested iterables flattened)."""
    return Html(sep.join(_flat(children)))


def h(tag: str, *children: Child, **attrs: object) -> Html:
    """<tag attrs>children</tag>. Attribute names: a trailing '_' is dropped (class_), other '_' become '-'
    (aria_label); True gives a bare attribute, None and False leave it out."""
    parts = [tag]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{text(value)}"')
    opening = f"<{' '.join(parts)}>"
    if tag in VOID:
        return Html(opening)
    return Html(f"{opening}{join(children)}</{tag}>")


def table(caption: str, head: Sequence[str], rows: Sequence[Html], body_id: str | None = None, numeric: int = 0) -> Html:
    """A captioned table in a box that scrolls sideways when it is wider than the window; the last `numeric` columns
    hold numbers."""
    first_number = len(head) - numeric
    thead = h("thead", h("tr", [h("th", c, scope="col", class_="num" if i >= first_number else None) for i, c in enumerate(head)]))
    return h("div", h("table", h("caption", caption), thead, h("tbody", rows, id=body_id)), class_="scroll")


def _flat(children: Iterable[Child]) -> Iterable[str]:
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, str | int | float):
            yield text(child)
        else:
            yield from _flat(child)
