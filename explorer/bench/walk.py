"""A seeded random walk over the page: each action picks one enabled widget on the page and sets it
(sliders and number inputs at their ends, 0 and values between, every option of select boxes and
radios, checkboxes and toggles both ways, buttons, hostile text, the project's own bad uploads,
keyed expanders opened and closed), or opens another section of the page (every TAB_EVERY-th
action: the section opened least so far), reruns the page in an AppTest session and checks that
nothing broke: no exception element, every section's tab still there, the open section drawn to
its end, and the closed ones empty.

The page's sections are tabs, and only the open one runs (explorer/ui/sections.py; "Your data"
always runs): a widget is on the page only while its section is open, so the walk switches
sections, as a click on a tab does (Action("tab", "section", "Traps")), to reach them all.

    python -m explorer.bench.walk --actions 5000 --seed 3
    python -m explorer.bench.walk --replay actions.json   # a failure's actions, as printed

tests/test_walk.py runs short walks of several seeds; this command runs long ones. A failure
prints the seed and the actions that lead to it, as JSON that ``--replay`` takes.

Training in AppTest: the session's worker thread (explorer/live.py) trains beside the page, as in a
browser, so after Train the walk's next actions rerun the page while the runs train (the fragment
that redraws them runs on a timer, which AppTest does not run). The Step button's steps are done
by the end of the script run it causes. Download
buttons are not pressed: they change nothing on the server (on_click="ignore"). The landscape's
Compute button reruns the page until every run's grid is done (a browser shows the rows as they
come; AppTest waits for the last rerun): minutes on a loaded machine, so the short walks of the
test suite leave it out (SLOW_IN_APPTEST) and the long walks of this command press it. So with the
comparison's Start: its runs train in the background for minutes, and the process waits for them
before it exits. The suite's walks also leave out the traps' trainings (TRAP_RUNS), which it
presses once each.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import struct
import sys
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer.ui import sections

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 900  # seconds per script run: importing TensorFlow, tracing steps, a whole landscape, on a loaded machine
SLOW_IN_APPTEST = frozenset({"landscape_start", "compare_start"})
# Each trains small U-Nets for 80 steps twice (20–30 s on a 2-core machine, a third of a 40-action
# walk when two are pressed). The suite presses each once (tests/test_walk.py) and walks without them.
TRAP_RUNS = frozenset({"trap_batch_run", "trap_fit_run", "trap_axis_run", "trap_sigmoid_run"})

KINDS = ("button", "checkbox", "toggle", "radio", "selectbox", "select_slider", "slider", "number_input", "text_input", "file_uploader")
# Set through st.session_state, as the browser sets them: the section open (its tabs' key) and
# keyed expanders that rerun the page (their content is drawn only while they are open).
TAB, EXPANDER = "tab", "expander"
# Every TAB_EVERY-th action opens another section, the one opened least so far (the first of them
# at random): a walk of 8 × TAB_EVERY actions opens every section, and works each with its widgets.
TAB_EVERY = 5

HOSTILE_TEXT = (
    "",
    " ",
    ",,,",
    "a, a, a, a",
    "<script>alert(1)</script>",
    "'; DROP TABLE runs; --",
    "NaN",
    "-1",
    "1e309",
    "../../etc/passwd",
    "%s%n{0}{}",
    "\u202eevil\u0000",
    "🧩" * 50,
    "x" * 5000,
)


@dataclass(frozen=True)
class Action:
    """One user action: the widget's kind and key, and the value set (for an upload, the name of
    one of UPLOADS' file sets; for a button, "click")."""

    kind: str
    key: str
    value: Any

    def __str__(self) -> str:
        shown = repr(self.value)
        return f"{self.kind} {self.key!r} ← {shown if len(shown) < 60 else shown[:57] + '…'}"


# -- the files uploaded ---------------------------------------------------------------------------


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming a huge image (a decompression bomb as far as its header goes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _mask(seed: int, size: int = 32, classes: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for c in range(1, classes):
        y, x = rng.integers(0, size - 8, 2)
        mask[y : y + 4 + c, x : x + 6] = c
    return mask


def _image(mask: np.ndarray) -> np.ndarray:
    image = np.full(mask.shape + (3,), 40, np.uint8)
    image[mask == 1] = (220, 60, 60)
    image[mask == 2] = (60, 60, 220)
    return image


def _config(**run_changes) -> bytes:
    run = {"label": "A", "loss": "dice", "params": {"smooth": 1e-05, "batch": False, "include_background": True}, "scheme": "balanced", "class_weights": [1.0, 1.0, 1.0, 1.0]}
    run.update(run_changes)
    return json.dumps({"version": 1, "settings": {"learning_rate": 0.001, "batch_size": 16, "seed": 0, "max_steps": 600, "steps_per_tick": 5, "evaluate_every": 20}, "runs": [run]}).encode()


def _uploads() -> dict[str, dict[str, list[tuple[str, bytes, str]]]]:
    """Per uploader key, named file sets: the refused files of explorer/uploads.py and
    explorer/export.py (tests/test_upload_app.py and tests/test_export.py check each message) and a
    few good ones, so that later actions see a page with uploads."""
    png, octet = "image/png", "application/octet-stream"
    masks = {f"{i:04d}": _mask(i) for i in range(6)}
    pairs = {f"masks/{n}.png": _png(m) for n, m in masks.items()} | {f"images/{n}.png": _png(_image(m)) for n, m in masks.items()}
    pickled = np.empty(2, dtype=object)
    pickled[:] = [{"a": 1}, [2]]
    probabilities = np.full((32, 32, 3), 1 / 3, np.float32)
    with_nan = probabilities.copy()
    with_nan[0, 0, 0] = np.nan
    return {
        "upload_masks": {
            "good mask": [("0000.png", _png(masks["0000"]), png)],
            "image-mask pairs": [("pairs.zip", _zip(pairs), "application/zip")],
            "empty": [("empty.png", b"", png)],
            "text as png": [("text.png", b"this is a text file, not an image\n", png)],
            "1x1 pixel": [("pixel.png", _png(np.zeros((1, 1), np.uint8)), png)],
            "bomb header": [("bomb.png", _png_claiming(20000, 20000), png)],
            "zip traversal": [("traversal.zip", _zip({"../evil.png": _png(masks["0001"])}), "application/zip")],
            "not a zip": [("notazip.zip", b"plain text", "application/zip")],
            "nested zip": [("nested.zip", _zip({"inner.zip": _zip({"a.png": _png(masks["0002"])})}), "application/zip")],
            "300 classes": [("classes300.png", _png((np.arange(3000) % 300).astype(np.uint16).reshape(60, 50)), png)],
        },
        "upload_images": {
            "matching images": [(f"{n}.png", _png(_image(m)), png) for n, m in masks.items()],
            "text as png": [("0000.png", b"no image", png)],
            "other size": [("0000.png", _png(np.zeros((20, 24, 3), np.uint8)), png)],
            "unpaired": [("zzzz.png", _png(_image(masks["0000"])), png)],
        },
        "upload_prediction": {
            "predicted mask": [("0000.png", _png(masks["0000"]), png)],
            "probabilities": [("0000.npy", _npy(probabilities), octet)],
            "pickled npy": [("0000.npy", _npy(pickled), octet)],
            "NaN probabilities": [("0000.npy", _npy(with_nan), octet)],
            "text as npy": [("0000.npy", b"not numpy", octet)],
            "other size": [("0000.npy", _npy(probabilities[:16]), octet)],
        },
        "export_config_upload": {
            "not json": [("setup.json", b"{not json", "application/json")],
            "empty object": [("setup.json", b"{}", "application/json")],
            "all weights zero": [("setup.json", _config(class_weights=[0.0, 0.0, 0.0, 0.0]), "application/json")],
            "only background weighted, background excluded": [
                ("setup.json", _config(params={"smooth": 1e-05, "batch": False, "include_background": False}, class_weights=[1.0, 0.0, 0.0, 0.0]), "application/json")
            ],
            "negative weight": [("setup.json", _config(class_weights=[1.0, -1.0, 1.0, 1.0]), "application/json")],
            "unknown loss": [("setup.json", _config(loss="nope"), "application/json")],
            "binary junk": [("setup.json", bytes(range(256)), "application/json")],
        },
    }


UPLOADS = _uploads()
NO_FILES = "no files"  # the uploader cleared


# -- choosing and performing actions --------------------------------------------------------------


def enabled_widgets(at: AppTest, skip: frozenset[str] = frozenset()) -> list:
    """Every widget on the page a user can change, with a key (the page keys all of its own),
    except the keys in ``skip``."""
    return [w for kind in KINDS for w in at.get(kind) if w.key and not w.disabled and w.key not in skip]


def _numbers(low: float, high: float, step: float, integer: bool, rng: random.Random) -> list:
    inside = low + step * rng.randint(0, max(0, int((high - low) / step)))
    values = [low, high, min(inside, high)] + ([0] if low <= 0 <= high else [])
    return [int(v) if integer else float(v) for v in values]


def _option_value(widget, label: str):
    """A value the widget shows as ``label``: the label itself, or the number it reads as. AppTest
    takes either for select boxes and radios; a select slider formats what it is given."""
    candidates = [str, int, float, lambda text: float(text.rstrip("%")) / 100]  # "10%" reads as 0.1
    # A format_func that looks a label up in a dict (NORMALIZATIONS.get): the dict's keys.
    table = getattr(widget.format_func, "__self__", None)
    if isinstance(table, dict):
        candidates += [lambda _, key=key: key for key in table]
    for convert in candidates:
        try:
            value = convert(label)
            if str(widget.format_func(value)) == label:
                return value
        except Exception:  # noqa: BLE001  (the page's format_func may take only its own options)
            continue
    return label


def choose(widget, rng: random.Random) -> Action:
    kind, key = widget.type, widget.key
    if kind == "button":
        return Action(kind, key, "click")
    if kind in ("checkbox", "toggle"):
        return Action(kind, key, not widget.value)
    if kind in ("radio", "selectbox", "select_slider"):
        return Action(kind, key, _option_value(widget, rng.choice(widget.options)))
    if kind == "slider":
        proto = widget.proto
        integer = isinstance(widget.value, int)
        return Action(kind, key, rng.choice(_numbers(proto.min, proto.max, proto.step or 1, integer, rng)))
    if kind == "number_input":
        integer = isinstance(widget.value, int)
        low = widget.min if widget.min is not None else -1e6
        high = widget.max if widget.max is not None else 1e6
        return Action(kind, key, rng.choice(_numbers(low, high, widget.step or 1, integer, rng)))
    if kind == "text_input":
        return Action(kind, key, rng.choice(HOSTILE_TEXT))
    if kind == "file_uploader":
        return Action(kind, key, rng.choice(sorted(UPLOADS.get(key, {})) + [NO_FILES]))
    raise AssertionError(f"no action for a {kind}")


def keyed_expanders(at: AppTest) -> list:
    """The expanders whose open state the page keeps under a key (and reruns on): the others
    change nothing on the server."""
    return [e for e in at.expander if e.key and e.key in at.session_state]


def opened(actions: list[Action]) -> dict[str, int]:
    """How often each section was opened by `actions` (the page opens on the first)."""
    counts = dict.fromkeys(sections.NAMES, 0)
    counts[sections.NAMES[0]] = 1
    for action in actions:
        if action.kind == TAB:
            counts[action.value] += 1
    return counts


def choose_action(at: AppTest, rng: random.Random, done: list[Action], skip: frozenset[str] = frozenset()) -> Action:
    """The next action after `done`: every TAB_EVERY-th, another section (one of those opened least
    so far); else a widget or keyed expander of the page as it is, each as likely."""
    if (len(done) + 1) % TAB_EVERY == 0:
        current = at.session_state[sections.KEY]
        counts = {name: n for name, n in opened(done).items() if name != current}
        return Action(TAB, sections.KEY, rng.choice([name for name, n in counts.items() if n == min(counts.values())]))
    candidates = enabled_widgets(at, skip) + [e for e in keyed_expanders(at) if e.key not in skip]
    chosen = rng.choice(candidates)
    if chosen.type == EXPANDER:
        return Action(EXPANDER, chosen.key, not at.session_state[chosen.key])
    return choose(chosen, rng)


def _widget(at: AppTest, action: Action):
    if action.kind == TAB:
        found = [tab for tab in section_tabs(at).values() if tab.label == action.value]
    elif action.kind == EXPANDER:
        found = [e for e in keyed_expanders(at) if e.key == action.key]
    else:
        found = [w for w in at.get(action.kind) if w.key == action.key]
    if not found:
        raise LookupError(f"{action.kind} {action.key!r}{' ' + repr(action.value) if action.kind == TAB else ''} is not on the page")
    return found[0]


def perform(at: AppTest, action: Action) -> None:
    widget = _widget(at, action)
    if action.kind in (TAB, EXPANDER):
        at.session_state[action.key] = action.value  # what a click on the tab or expander sends
    elif action.kind == "button":
        widget.click()
    elif action.kind == "file_uploader":
        widget.set_value(None if action.value == NO_FILES else UPLOADS[action.key][action.value])
    else:
        widget.set_value(action.value)
    at.run()


def section_tabs(at: AppTest) -> dict:
    """The sections' tabs on the page, by name (Tab blocks, each holding what its section drew);
    empty when the page stopped before them."""
    containers = [b for b in at.main if getattr(b, "type", None) == "tab_container" and b.key == sections.KEY]
    if not containers:
        return {}
    return {tab.label: tab for tab in containers[0].children.values() if tab.type == "tab"}


def _labels(block, kind: str) -> set[str]:
    return {e.label for e in block.get(kind)}


def _keys(block, kind: str) -> set[str]:
    return {e.key for e in block.get(kind) if e.key}


def _starts(block, kind: str, text: str) -> bool:
    return any(e.value.startswith(text) for e in block.get(kind))


# Each section drawn to its end (or, for the sections made of fragments, each fragment drawn): what
# the section's tab holds when it is open, whatever the data and the settings.
DRAWN = {
    sections.LIVE: lambda tab: _keys(tab, "plotly_chart") >= {"curves"} and _starts(tab, "caption", "Training on "),
    sections.LOSSES: lambda tab: _starts(tab, "markdown", "**Run A: ") and _starts(tab, "caption", "Every definition, convention and reference value"),
    sections.SURFACES: lambda tab: _labels(tab, "tab") >= {"Pixel and plane views", "Per-pixel maps", "Loss landscape"} and "landscape_start" in _keys(tab, "button"),
    sections.DATASET: lambda tab: any(h.value.endswith(" validation images") for h in tab.subheader) and _starts(tab, "caption", "Class weights under every scheme"),
    sections.YOUR_DATA: lambda tab: _labels(tab, "tab") >= {"Masks", "Images (train on them)", "Prediction"} and _keys(tab, "file_uploader") >= {"upload_masks", "upload_images", "upload_prediction"},
    sections.WHICH_LOSS: lambda tab: "compare_start" in _keys(tab, "button"),
    sections.TRAPS: lambda tab: _labels(tab, "tab") >= {"Weights per batch", "Sigmoid vs softmax"},
    sections.EXPORT: lambda tab: [h.value for h in tab.header] == ["Export"] and "export_make_link" in _keys(tab, "button"),
}
ALWAYS_RUN = frozenset({sections.YOUR_DATA})  # its uploaders keep their files only while drawn


def section_problems(at: AppTest) -> list[str]:
    """The sections' tabs all there, the open one drawn to its end, and the others empty (only the
    open section runs; "Your data" always does)."""
    tabs = section_tabs(at)
    if list(tabs) != list(sections.NAMES):
        return [f"the sections' tabs are {list(tabs)}, not {list(sections.NAMES)}"]
    open_name = at.session_state[sections.KEY]
    found = [] if DRAWN[open_name](tabs[open_name]) else [f"the open section {open_name!r} is not drawn to its end"]
    for name, tab in tabs.items():
        drawn = elements(tab)
        if name != open_name and name not in ALWAYS_RUN and drawn:
            found.append(f"the closed section {name!r} drew {[e.type for e in drawn][:5]}")
    return found


def elements(block) -> list:
    """The elements in `block`, not counting empty containers (a fragment keeps one, as the
    comparison's does while another section is open)."""
    return [node for node in block if not hasattr(node, "children")]


def problems(at: AppTest) -> list[str]:
    """What is broken on the page: exception elements, and sections missing or not drawn."""
    found = [f"exception: {e.message}\n{''.join(e.stack_trace)}" for e in at.exception]
    return found + section_problems(at)


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    return at


@dataclass
class Walk:
    seed: int
    actions: list[Action]
    problems: list[str]
    seconds: float

    def report(self) -> str:
        """The seed and the actions that reproduce the failure (JSON for --replay)."""
        lines = [f"seed {self.seed}: {len(self.actions)} actions, {'FAILED' if self.problems else 'ok'} ({self.seconds:.0f} s)"]
        if self.problems:
            lines += ["actions (python -m explorer.bench.walk --replay FILE, with this JSON in FILE):", actions_json(self.actions)]
            lines += ["what broke after the last action:"] + self.problems
        return "\n".join(lines)


def actions_json(actions: list[Action]) -> str:
    return json.dumps([asdict(a) for a in actions], ensure_ascii=True)


def _step(at: AppTest, action: Action, number: int, log) -> list[str]:
    """Perform one action; what broke (an action that raises, a timed-out script run included)."""
    if log:
        log(f"{number:5d} {action}")
    try:
        perform(at, action)
    except Exception as error:  # noqa: BLE001  (reported with the seed and the actions)
        return [f"the action raised {type(error).__name__}: {error}"]
    return problems(at)


def walk(seed: int, count: int, *, skip: frozenset[str] = frozenset(), log=None) -> Walk:
    """``count`` random actions from a fresh page (never on the widgets keyed in ``skip``),
    stopping at the first broken page."""
    rng = random.Random(seed)
    start = time.perf_counter()
    at = open_page()
    done: list[Action] = []
    found = problems(at)
    while not found and len(done) < count:
        done.append(choose_action(at, rng, done, skip))
        found = _step(at, done[-1], len(done), log)
    return Walk(seed, done, found, time.perf_counter() - start)


def replay(actions: list[Action], *, log=None) -> Walk:
    """The same actions again from a fresh page (what a failure printed)."""
    start = time.perf_counter()
    at = open_page()
    done: list[Action] = []
    found = problems(at)
    for action in actions:
        if found:
            break
        done.append(action)
        found = _step(at, action, len(done), log)
    return Walk(-1, done, found, time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", type=Path, help="a JSON file of actions, as a failure prints them")
    args = parser.parse_args(argv)
    if args.replay:
        result = replay([Action(**a) for a in json.loads(args.replay.read_text())], log=print)
    else:
        result = walk(args.seed, args.actions, log=lambda line: print(line, flush=True))
    print(result.report())
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
