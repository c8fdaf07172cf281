"""What Telegram accepts as `parse_mode=HTML` text, checked the way the Bot API states it: only
its tags (b, strong, i, em, u, ins, s, strike, del, span class="tg-spoiler", tg-spoiler, a,
tg-emoji, code, pre, blockquote), properly nested, and every `<`, `>` and `&` that is not part of
a tag or an entity written as `&lt;`, `&gt;`, `&amp;` (or `&quot;`, or a numeric entity).
The Telegram look-alike does not parse HTML; tests use this to catch a text the real one refuses
("can't parse entities")."""

from __future__ import annotations

from html.parser import HTMLParser

TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "tg-emoji", "code", "pre", "blockquote",
}  # fmt: skip
ENTITIES = {"lt", "gt", "amp", "quot"}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TAGS:
            self.problems.append(f"unsupported tag <{tag}>")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        for char in "<>&":
            if char in data:
                self.problems.append(f"unescaped {char!r} in {data[:40]!r}")

    def handle_entityref(self, name: str) -> None:
        if name not in ENTITIES:
            self.problems.append(f"unknown entity &{name};")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"declaration {data[:40]!r}")

    def handle_comment(self, data: str) -> None:
        self.problems.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration {decl[:40]!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction {data[:40]!r}")


def html_problems(text: str) -> list[str]:
    """Why Telegram would refuse `text` in HTML parse mode (empty: it would accept it)."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    if checker.rawdata:
        checker.problems.append(f"unparsed {checker.rawdata[:40]!r}")
    if checker.open:
        checker.problems.append(f"unclosed <{checker.open[-1]}>")
    return checker.problems
