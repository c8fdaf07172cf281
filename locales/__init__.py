"""The gettext catalogs (domain `messages`) as package data, found with `importlib.resources`.

`<lang>/LC_MESSAGES/messages.po` is the source; the `.mo` next to it is compiled by the build hook
(`hatch_build.py`) for the wheel and for the editable install.
"""
