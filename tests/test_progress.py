"""The plain progress output: batched lines, failures at once, nothing lost at the end."""

import io

from buildpy.actions.graph import Action, ActionKind
from buildpy.execution.executor import Outcome
from buildpy.execution.progress import PlainProgress


class CountingWriter(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _outcome(name: str, ok: bool = True, cached: bool = False) -> Outcome:
    action = Action(owner=f"//p:{name} (abc)", owner_label=f"//p:{name}", configuration="abc",
                    mnemonic="Genrule", kind=ActionKind.RUN, outputs=(f"out/{name}",),
                    argv=("/bin/false",), progress_message=f"Making {name}")
    return Outcome(action, "key", cached=cached, ok=ok, outputs={},
                   error=None if ok else "exit 1")


def test_lines_wait_for_the_interval_and_close_writes_the_rest_in_order():
    out = CountingWriter()
    progress = PlainProgress(out, interval=3600)
    for i, name in enumerate(("a", "b", "c")):
        progress.finished(_outcome(name), i + 1, 3)
        progress.tick(i + 1, 3)
    progress.finished(_outcome("d", cached=True), 4, 4)   # a cache hit prints nothing
    assert out.getvalue() == ""
    progress.close()
    assert out.getvalue() == "[1 / 3] Making a\n[2 / 3] Making b\n[3 / 3] Making c\n"
    assert out.writes == 1


def test_a_failure_is_written_at_once_after_the_lines_before_it():
    out = CountingWriter()
    progress = PlainProgress(out, interval=3600)
    progress.finished(_outcome("a"), 1, 2)
    progress.finished(_outcome("b", ok=False), 2, 2)
    text = out.getvalue()
    assert text.startswith("[1 / 2] Making a\nERROR: //p:b: Genrule failed: exit 1")


def test_a_due_tick_writes_what_is_waiting():
    out = CountingWriter()
    progress = PlainProgress(out, interval=0)
    progress.finished(_outcome("a"), 1, 2)
    assert out.getvalue() == "[1 / 2] Making a\n"
    progress.tick(1, 2)   # nothing new: no write
    assert out.writes == 1


def test_the_live_display_marks_the_actions_running_remotely():
    from buildpy.execution.progress import RichProgress

    progress = RichProgress(io.StringIO(), color=False)
    here, there = _outcome("here").action, _outcome("there").action
    progress.started(here, 2)
    progress.started(there, 2)
    progress.runs_remotely(there)
    shown = progress._render().plain
    progress.close()
    assert "    Making here\n" in shown and "    Making there (remote)\n" in shown
