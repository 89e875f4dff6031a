"""Opening app.py in an AppTest session, shared by the page tests.

The page is split into sections, one tab each (explorer/ui/sections.py), and only the open one runs
(with "Your data", which always runs): a test opens the section whose elements it reads or sets,
as a click on its tab does, with ``open_section`` or ``open_page(section=...)``."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from explorer.ui import sections

APP = Path(__file__).resolve().parent.parent / "app.py"  # absolute: AppTest resolves relative paths against the caller
TIMEOUT = 180  # seconds per script run: importing TensorFlow, building runs, tracing steps and planes


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, "the page raised:\n" + "\n\n".join(f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception)


def open_page(query: dict[str, str] | None = None, section: str | None = None) -> AppTest:
    """A new browser session on the page, optionally opened with a link's query parameters, then
    on `section` (else on the default one, Live)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert_no_exception(at)
    assert open_section_name(at) == sections.LIVE, "the page opens on the live view"
    if section is not None:
        open_section(at, section)
    return at


def open_section(at: AppTest, name: str) -> AppTest:
    """Opens the page's section `name` as a click on its tab does (the tabs rerun the page on a
    change), and checks that it is the one open and that it drew something."""
    assert name in sections.NAMES, f"no section {name!r}: {sections.NAMES}"
    at.session_state[sections.KEY] = name
    at.run()
    assert_no_exception(at)
    assert open_section_name(at) == name
    assert len(section(at, name).children) > 0, f"the {name!r} section is open but empty"
    return at


def open_section_name(at: AppTest) -> str:
    return at.session_state[sections.KEY]


def section_tabs(at: AppTest) -> dict:
    """The sections' tabs on the page, by name, in their order (Tab blocks: each has the
    elements its section drew, and no others)."""
    container = at.main.get_by_key(sections.KEY)
    return {tab.label: tab for tab in container.children.values() if tab.type == "tab"}


def section(at: AppTest, name: str):
    tabs = section_tabs(at)
    assert list(tabs) == list(sections.NAMES), f"the page's sections are {list(tabs)}"
    return tabs[name]


def open_expander(at: AppTest, key: str, open_: bool = True) -> AppTest:
    """Opens (or closes) the keyed expander `key` as a click on it does (it reruns the page)."""
    assert [e for e in at.expander if e.key == key], f"no expander {key!r} on the page"
    at.session_state[key] = open_
    at.run()
    assert_no_exception(at)
    return at


def problems_in_every_section(at: AppTest, errors: bool = True) -> dict[str, list[str]]:
    """Opens every section in turn and collects what each shows as broken (exceptions and, with
    `errors`, error messages); then opens the section that was open before. Only the open section
    runs, so this is how a test sees the whole page."""
    before = open_section_name(at)
    found = {}
    for name in sections.NAMES:
        at.session_state[sections.KEY] = name
        at.run()
        shown = [f"exception: {e.message}\n{''.join(e.stack_trace)}" for e in at.exception]
        shown += [f"error: {e.value}" for e in at.error] if errors else []
        if shown:
            found[name] = shown
    open_section(at, before)
    return found


def assert_every_section_whole(at: AppTest, errors: bool = True) -> None:
    """No section raises (nor, with `errors`, shows an error message)."""
    found = problems_in_every_section(at, errors)
    assert not found, "\n".join(f"{name}: {problem}" for name, shown in found.items() for problem in shown)
