"""The watch app: a live view of one session folder, and the researcher's steering keys.

It reads the folder through `SessionView` (polled twice a second) and writes only
control.jsonl, through `agent.steering.send`; it never drives the search itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Static,
    TabbedContent,
    TabPane,
    Tree,
)
from textual.widgets.tree import TreeNode
from textual_plotext import PlotextPlot

from agent.events import Event, RawEvent, Steered
from agent.steering import Command, send
from agent.tui.model import (
    CandidateRecord,
    RejectedRecord,
    SessionView,
    TranscriptTail,
    describe,
    fmt_score,
    nodes_line,
    short,
)

PAGE = 200
"""Children added to the tree per expansion (and per "… N more" node)."""
FINISHED_SHOWN = 20
"""Ended episodes kept in the Episodes table below the running ones."""
STATE_STYLE = {"running": "bold green", "paused": "bold yellow", "stopping": "bold dark_orange",
               "finished": "bold blue", "dead": "bold red"}
RANK_STYLE = {"best": "bold bright_green", "top": "green", "normal": "", "invalid": "red", "pending": "dim"}


@dataclass
class More:
    """The "… N more" node under `parent`: selecting it loads the next page."""

    parent: str


NodeData = CandidateRecord | RejectedRecord | More


def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class NoteScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("A note for the agents' later prompts (enter sends, escape cancels):")
            yield Input(placeholder="note", id="note")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class QuitScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("d", "leave('detach')", "Detach"), Binding("s", "leave('stop')", "Stop run"),
                Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Leave the viewer?  [b]d[/b] detach: the run goes on  ·  [b]s[/b] stop the run  ·  "
                        "[b]esc[/b] stay")
            with Horizontal(id="buttons"):
                yield Button("Detach", id="detach", variant="primary")
                yield Button("Stop run", id="stop", variant="error")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_leave(self, how: str) -> None:
        self.dismiss(how)

    def action_cancel(self) -> None:
        self.dismiss(None)


class WatchApp(App[str | None]):
    TITLE = "adrs-agent watch"
    CSS = """
    #top { height: 1; }
    #facts { width: auto; }
    #budget { width: 22; margin: 0 1; }
    #money { width: 1fr; }
    #main { height: 1fr; }
    #tree { width: 46%; border: round $primary; }
    #tabs { width: 1fr; }
    #transcript { height: 1fr; border: round $primary; }
    #episodes { height: auto; max-height: 12; }
    #nodes { height: auto; }
    #events { height: 8; border: round $primary; }
    ModalScreen { align: center middle; }
    #dialog { width: 80; height: auto; border: thick $primary; padding: 1 2; background: $surface; }
    #buttons { height: auto; margin-top: 1; }
    #buttons Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("space", "pause", "Pause/resume", priority=True),
        Binding("n", "note", "Note"),
        Binding("P", "pin", "Pin"),
        Binding("x", "stop_episode", "Stop episode"),
        Binding("plus", "budget", "Budget +10", key_display="+"),
        Binding("s", "stop", "Stop run"),
        Binding("d", "toggle_diff", "Diff base"),
        Binding("p", "review", "PR (dry run)"),
        Binding("q", "quit_dialog", "Quit"),
    ]
    STEERING = {"pause", "note", "pin", "stop_episode", "budget", "stop", "toggle_diff", "review", "quit_dialog"}

    def __init__(self, session_dir: Path):
        super().__init__()
        self.view = SessionView(Path(session_dir))
        self.diff_base = "parent"
        self.selected: NodeData | None = None
        self.nodes: dict[str, TreeNode[NodeData]] = {}
        self.shown: dict[str, int] = {}
        """Per parent commit whose children are in the tree, how many of them are."""
        self.more: dict[str, TreeNode[NodeData]] = {}
        self.pause_sent: bool | None = None
        """What the last space sent (pause: True), until the runner's steered event says so."""
        self.transcript: TranscriptTail | None = None
        self.transcript_episode: int | None = None
        self.plotted = -1
        self.dead_told = False
        self.best_path: list[str] = []

    # -- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # kept as attributes: the app's own query_one looks only at the active screen (a dialog's)
        self.facts, self.money = Static(id="facts"), Static(id="money")
        self.bar = ProgressBar(id="budget", show_eta=False, show_percentage=False)
        self.genealogy: Tree[NodeData] = Tree("waiting for the baseline", id="tree")
        self.tabs = TabbedContent(id="tabs")
        self.detail_pane = Static(id="detail")
        self.plot = PlotextPlot(id="plot")
        self.table = DataTable(id="episodes", cursor_type="row", zebra_stripes=True)
        self.evaluators_line = Static(id="nodes")
        self.transcript_log = RichLog(id="transcript", wrap=True, markup=False, max_lines=2000)
        self.events_log = RichLog(id="events", max_lines=500, markup=False)
        with Horizontal(id="top"):
            yield self.facts
            yield self.bar
            yield self.money
        with Horizontal(id="main"):
            yield self.genealogy
            with self.tabs:
                with TabPane("Candidate", id="candidate"):
                    with VerticalScroll():
                        yield self.detail_pane
                with TabPane("Score", id="score"):
                    yield self.plot
                with TabPane("Episodes", id="episodes-tab"):
                    yield self.evaluators_line
                    yield self.table
                    yield self.transcript_log
        yield self.events_log
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        table.add_columns("episode", "island", "parent", "model", "step", "last tool", "tokens", "$", "state")
        self.transcript_log.write(Text("select an episode to follow its transcript", "dim"))
        events = self.view.poll()
        self.log_events(events[-200:])
        self.build_tree()
        self.refresh_all()
        self.set_interval(0.5, self.tick)

    # -- polling ---------------------------------------------------------------------------------
    def tick(self) -> None:
        before = self.view.version
        events = self.view.poll()
        self.log_events(events)
        if any(isinstance(ev, Steered) and ev.command in ("pause", "resume") for ev in events):
            self.pause_sent = None
        if events:
            self.grow_tree()
        if self.view.version != before:
            self.refresh_all()
        else:
            self.refresh_header()
        self.follow_transcript()

    def log_events(self, events: list[Event | RawEvent]) -> None:
        log = self.events_log
        for ev in events:
            line = describe(ev)
            if line:
                log.write(Text(line[0], line[1]))

    def refresh_all(self) -> None:
        self.refresh_header()
        self.refresh_episodes()
        if self.tabs.active == "score":
            self.refresh_plot()
        if isinstance(self.selected, CandidateRecord):
            self.show_detail()

    def refresh_header(self) -> None:
        view, h = self.view, self.view.header
        state = view.runner_state()
        models = ", ".join(h.models) or "?"
        self.facts.update(Text.assemble(
            (h.task or "?", "bold"), f"  {h.session_id}  {models}  {clock(view.elapsed())}  ",
            (f"{h.used}/{h.budget}", "bold")))
        bar = self.bar
        bar.update(total=max(h.budget, 1), progress=min(h.used, max(h.budget, 1)))
        money = f"${h.cost:.2f} of ${h.max_cost:.2f}" if h.max_cost else f"${h.cost:.2f} (no limit)"
        best = Text.assemble(money, "  best ", (fmt_score(h.best_score), "bold bright_green"))
        gain = h.gain()
        if gain:
            pct = f", {gain[1]:+.1f}%" if gain[1] is not None else ""
            best.append(f" ({gain[0]:+.4g}{pct})")
        best.append("  ")
        best.append(state, STATE_STYLE[state])
        self.money.update(best)
        if state == "dead" and not self.dead_told:
            self.dead_told = True
            log = self.events_log
            log.write(Text("no runner is alive: `adrs-agent resume` goes on; last lines of run.log:", "red"))
            for line in self.view.run_log_tail():
                log.write(Text(line, "dim"))

    # -- the genealogy tree ----------------------------------------------------------------------
    def label(self, item: NodeData) -> Text:
        if isinstance(item, More):
            left = len(self.view.children.get(item.parent, [])) - self.shown.get(item.parent, 0)
            return Text(f"… {left} more", "italic")
        if isinstance(item, RejectedRecord):
            return Text(f"rejected: {', '.join(item.paths)}", "dim dark_orange")
        rank = self.view.rank(item)
        on_path = item.commit in self.best_path
        text = Text.assemble(("★ " if on_path else "", "bold yellow"), (short(item.commit), "bold" if on_path else ""))
        score = "invalid" if rank == "invalid" else "…" if rank == "pending" else fmt_score(item.score)
        text.append(f" {score}", RANK_STYLE[rank] + (" bold" if on_path else ""))
        text.append(f"  i{item.island} e{item.episode}" if item.episode >= 0 else "  baseline", "dim")
        return text

    def build_tree(self) -> None:
        base = self.view.candidates.get(self.view.header.baseline)
        if base is None:
            return
        tree = self.genealogy
        self.best_path = path = self.view.best_path()  # before any label: they star the path
        tree.root.set_label(self.label(base))
        tree.root.data = base
        self.nodes[base.commit] = tree.root
        if base.commit not in self.shown:
            self.load_children(base.commit)
        tree.root.expand()
        self.open_path(path)
        best = self.nodes.get(path[-1]) if path else tree.root
        self.call_after_refresh(self.select, best or tree.root)

    def open_path(self, path: list[str]) -> None:
        """Load and expand the nodes from the baseline down to the last of `path`."""
        for parent, child in zip(path, path[1:]):
            if parent not in self.nodes:
                return
            if parent not in self.shown:
                self.load_children(parent)
            if child not in self.nodes:  # beyond the first page: shown first
                self.add_node(self.nodes[parent], self.view.candidates[child], before=0)
            self.nodes[parent].expand()

    def select(self, node: TreeNode[NodeData]) -> None:
        tree = self.genealogy
        tree.move_cursor(node)
        tree.focus()
        self.selected = node.data
        self.show_detail()

    def load_children(self, parent: str) -> None:
        """Add the next page of `parent`'s children."""
        node = self.nodes.get(parent)
        if node is None:
            return
        items = self.view.children.get(parent, [])
        shown = self.shown.get(parent, 0)
        end = min(len(items), shown + PAGE)
        if end <= shown and parent in self.shown:
            return
        if more := self.more.pop(parent, None):
            more.remove()
        for item in items[shown:end]:
            if not (isinstance(item, CandidateRecord) and item.commit in self.nodes):
                self.add_node(node, item)
        self.shown[parent] = end
        if end < len(items):
            self.more[parent] = node.add_leaf(self.label(More(parent)), data=More(parent))

    def add_node(self, node: TreeNode[NodeData], item: CandidateRecord | RejectedRecord,
                 before: int | None = None) -> None:
        if isinstance(item, RejectedRecord):
            node.add_leaf(self.label(item), data=item)
            return
        has_children = bool(self.view.children.get(item.commit))
        self.nodes[item.commit] = node.add(self.label(item), data=item, before=before, allow_expand=has_children)

    def grow_tree(self) -> None:
        """Add the candidates that arrived under parents whose children are loaded; relabel."""
        if not self.nodes:
            self.build_tree()
            return
        for parent, items in self.view.children.items():
            node = self.nodes.get(parent)
            if node is None:
                continue
            if parent not in self.shown:
                node.allow_expand = bool(items)
            elif parent in self.more:
                self.more[parent].set_label(self.label(More(parent)))
            elif self.shown[parent] < len(items):
                for item in items[self.shown[parent]:]:
                    if not (isinstance(item, CandidateRecord) and item.commit in self.nodes):
                        self.add_node(node, item)
                self.shown[parent] = len(items)
        path = self.view.best_path()
        if path != self.best_path:  # a new best: show where it is (the cursor stays put)
            self.open_path(path)
        self.best_path = path
        for node in self.nodes.values():
            if isinstance(node.data, CandidateRecord):
                node.set_label(self.label(node.data))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[NodeData]) -> None:
        if isinstance(event.node.data, CandidateRecord) and event.node.data.commit not in self.shown:
            self.load_children(event.node.data.commit)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[NodeData]) -> None:
        if not isinstance(event.node.data, More):
            self.selected = event.node.data
            self.show_detail()

    def on_tree_node_selected(self, event: Tree.NodeSelected[NodeData]) -> None:
        if isinstance(event.node.data, More):
            self.load_children(event.node.data.parent)

    # -- the detail pane ---------------------------------------------------------------------------
    def show_detail(self) -> None:
        self.detail_pane.update(self.detail(self.selected))

    def detail(self, item: NodeData | None) -> RenderableType:
        if isinstance(item, RejectedRecord):
            return Text(f"A commit refused in episode {item.episode} (parent {short(item.parent)}).\n"
                        f"paths: {', '.join(item.paths)}\nreason: {item.reason}")
        if not isinstance(item, CandidateRecord):
            return Text("select a candidate in the tree", "dim")
        facts = Table.grid(padding=(0, 2))
        pinned = " (pinned)" if self.view.steering.pinned == item.commit else ""
        for key, value in (("commit", item.commit + pinned), ("parent", item.parent or "none (baseline)"),
                           ("episode", str(item.episode)), ("island", str(item.island)), ("model", item.model)):
            facts.add_row(Text(key, "bold"), value)
        stages = Table("stage", "score", "valid", "wall s", "error", box=box.SIMPLE_HEAD, show_edge=False)
        for st in item.stages:
            stages.add_row(str(st.get("stage", "")), fmt_score(st.get("score")),
                           "yes" if st.get("valid") else Text("no", "red"),
                           f"{st.get('wall_s', 0.0):.2f}", shorten(st.get("error") or "", 60))
        if item.test_score is not None:
            stages.add_row("held-out test", fmt_score(item.test_score), "", "", "")
        metrics = Table("metric", "value", box=box.SIMPLE_HEAD, show_edge=False)
        for key, value in item.metrics.items():
            metrics.add_row(str(key), shorten(json.dumps(value) if not isinstance(value, str) else value, 80))
        diff = self.view.diff(item.commit, self.diff_base)
        against = "its parent" if self.diff_base == "parent" else "the baseline"
        parts: list[RenderableType] = [facts, Text(""), Text(item.message or "(no message)", "italic"), Text(""),
                                       stages]
        if item.metrics:
            parts += [Text(""), metrics]
        if item.feedback:
            parts += [Text("feedback", "bold"), Text(item.feedback)]
        parts.append(Text(f"\ndiff against {against} (d toggles)", "bold"))
        parts.append(Syntax(diff, "diff", theme="ansi_dark") if diff else Text("(no changes)", "dim"))
        return Group(*parts)

    # -- the score plot --------------------------------------------------------------------------
    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "score":
            self.refresh_plot()

    def refresh_plot(self) -> None:
        if self.plotted == self.view.version:
            return
        self.plotted = self.view.version
        widget = self.plot
        plt, view = widget.plt, self.view
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"score by evaluation ({view.header.direction}); red line: the baseline")
        plt.xlabel("evaluation")
        if view.points:
            plt.scatter([x for x, _ in view.points], [y for _, y in view.points], marker="o", label="candidate")
            line: list[tuple[int, float]] = []
            for x, y in view.best_so_far:  # a step line: flat until the next best
                line += [(x, line[-1][1]), (x, y)] if line else [(x, y)]
            plt.plot([x for x, _ in line], [y for _, y in line], marker="braille", label="best so far")
        if view.header.baseline_score is not None:
            plt.hline(view.header.baseline_score, "red")
        widget.refresh()

    # -- episodes --------------------------------------------------------------------------------
    def episode_rows(self) -> list[tuple[Any, ...]]:
        running = self.view.running()
        ended = [ep for ep in self.view.episodes.values() if ep.ended][-FINISHED_SHOWN:]
        return [(ep.episode, f"i{ep.island}", short(ep.parent), ep.model, ep.steps, ep.last_tool, ep.tokens,
                 f"{ep.dollars:.4f}", ep.ended or "running") for ep in running + ended[::-1]]

    def refresh_episodes(self) -> None:
        self.evaluators_line.update(Text(nodes_line(self.view.nodes), "dim"))
        table = self.table
        rows = self.episode_rows()
        current = [tuple(table.get_row_at(i)) for i in range(table.row_count)]
        if rows == current:
            return
        keep = self.selected_episode()
        table.clear()
        for row in rows:
            table.add_row(*row, key=str(row[0]))
        if keep is not None and str(keep) in {str(r[0]) for r in rows}:
            table.move_cursor(row=table.get_row_index(str(keep)))

    def selected_episode(self) -> int | None:
        table = self.table
        if table.row_count == 0:
            return None
        return int(table.get_row_at(table.cursor_row)[0])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        episode = int(event.row_key.value or 0)
        if episode == self.transcript_episode:
            return
        self.transcript_episode = episode
        self.transcript = TranscriptTail(self.view.session.transcript_path(episode))
        self.transcript_log.clear()
        self.follow_transcript()

    def follow_transcript(self) -> None:
        if self.transcript is None:
            return
        log = self.transcript_log
        for record in self.transcript.read():
            for line in transcript_lines(record):
                log.write(line)

    # -- steering --------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.STEERING and isinstance(self.screen, ModalScreen):
            return False
        return True

    def steer(self, command: Command, what: str) -> bool:
        state = self.view.runner_state()
        if state == "finished":
            self.notify("the run has finished", severity="warning")
            return False
        send(self.view.dir, command)
        tail = "; no runner is alive: it applies on `adrs-agent resume`" if state == "dead" else ""
        self.notify(f"sent {what}{tail}")
        return True

    def action_pause(self) -> None:
        paused = self.view.steering.paused if self.pause_sent is None else self.pause_sent
        command = "resume" if paused else "pause"
        if self.steer(Command(command), command):
            self.pause_sent = not paused

    def action_note(self) -> None:
        if self.view.runner_state() == "finished":
            self.notify("the run has finished", severity="warning")
            return

        def sent(text: str | None) -> None:
            if text:
                self.steer(Command("note", text=text), f"note: {shorten(text, 60)}")
        self.push_screen(NoteScreen(), sent)

    def action_pin(self) -> None:
        item = self.selected
        if not isinstance(item, CandidateRecord):
            self.notify("select a candidate", severity="warning")
        elif self.view.steering.pinned == item.commit:
            self.steer(Command("unpin"), f"unpin {short(item.commit)}")
        else:
            self.steer(Command("pin", commit=item.commit), f"pin {short(item.commit)}")

    def action_stop_episode(self) -> None:
        episode = self.selected_episode()
        if self.tabs.active != "episodes-tab" or episode is None:
            self.notify("select an episode", severity="warning")
            return
        if self.view.episodes[episode].ended:
            self.notify(f"episode {episode} has ended", severity="warning")
            return
        self.steer(Command("stop_episode", episode=episode), f"stop episode {episode}")

    def action_budget(self) -> None:
        self.steer(Command("budget", amount=10), "budget +10")

    def action_stop(self) -> None:
        self.steer(Command("stop"), "stop")

    def action_toggle_diff(self) -> None:
        self.diff_base = "baseline" if self.diff_base == "parent" else "parent"
        self.show_detail()

    def action_review(self) -> None:
        """The selected candidate's pull request as a dry run (`adrs-agent pr ... --dry-run`), in
        a process of its own: the body and patches land in sessions/<id>/pr/<sha>/."""
        item = self.selected
        if not isinstance(item, CandidateRecord) or not item.valid or item.parent is None:
            self.notify("select a valid candidate (not the baseline)", severity="warning")
            return
        argv = [sys.executable, "-m", "agent.cli", "pr", str(self.view.dir), item.commit, "--dry-run"]
        self.notify(f"writing the pull request of {short(item.commit)} (dry run) ...")

        def write() -> None:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            lines = [line for line in proc.stdout.splitlines() if line.strip()]
            self.call_from_thread(self.reviewed, proc.returncode, lines)
        self.run_worker(write, thread=True, group="pr")

    def reviewed(self, returncode: int, lines: list[str]) -> None:
        for line in lines:
            self.events_log.write(Text(f"pr: {line}", "red" if returncode else "cyan"))
        body = next((line for line in lines if line.startswith("body: ")), None)
        if returncode or body is None:
            self.notify(lines[-1] if lines else "pr failed", severity="error", timeout=10)
        else:
            self.notify(f"pull request written: {body[6:]}", timeout=10)

    def action_quit_dialog(self) -> None:
        if self.view.runner_state() == "finished":  # nothing to detach from or stop
            self.exit(None)
            return

        def chosen(choice: str | None) -> None:
            if choice == "stop" and self.view.runner_state() != "finished":
                send(self.view.dir, Command("stop"))
            if choice:
                self.exit(choice)
        self.push_screen(QuitScreen(), chosen)


def transcript_lines(record: dict[str, Any]) -> list[Text]:
    """How one transcript line reads in the Episodes tab."""
    if "format_version" in record:
        return [Text(f"episode {record.get('episode')} · {record.get('model')} · from "
                     f"{short(record.get('parent'))}", "bold")]
    msg = record.get("message") or {}
    role, content = msg.get("role"), msg.get("content") or ""
    if isinstance(content, list):
        content = " ".join(str(part.get("text", "")) if isinstance(part, dict) else str(part) for part in content)
    if role == "assistant":
        lines = [Text(f"[{record.get('step', '')}] {content}")] if content else []
        for call in msg.get("tool_calls") or []:
            args = json.dumps(call.get("arguments") or {})
            lines.append(Text(f"  → {call.get('name')}({shorten(args, 120)})", "cyan"))
        return lines
    if role == "tool":
        style = "red" if msg.get("is_error") else "dim"
        return [Text(f"  ← {msg.get('name')}: {shorten(content)}", style)]
    return [Text(f"{role}: {shorten(content)}", "dim italic")]
