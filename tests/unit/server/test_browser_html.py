"""The HTML builder escapes whatever is not already Html, in text and in attributes."""

from zoo.server.browser.html import Html, h, join, text


def test_text_and_attribute_values_are_escaped():
    got = h("a", '<script>alert("x")</script> & co', href='/x?a=1&b="2"', title="it's")
    assert got == ('<a href="/x?a=1&amp;b=&quot;2&quot;" title="it&#x27;s">'
                   "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</a>")


def test_html_is_kept_and_nested_children_flatten():
    assert h("p", h("b", "<1>"), [" ", ["x", None, False], 2]) == "<p><b>&lt;1&gt;</b> x2</p>"
    assert join([Html("<br>"), "<br>"], "|") == "<br>|&lt;br&gt;"
    assert text(Html("<i>")) == "<i>" and isinstance(h("i"), Html)


def test_attribute_names_and_values():
    assert h("input", id="a", hidden=True, open=False, placeholder=None) == '<input id="a" hidden>'  # void: no closing tag
    assert h("label", "x", for_="a", class_="c", aria_label="y", data_one_hot="1") == \
        '<label for="a" class="c" aria-label="y" data-one-hot="1">x</label>'
