"""`stead runs send/input/status/messages`: messages to runs, human input for runs waiting in
`stead.wait_for_input`, and the status values runs publish (store/waits.py).

They talk to the store's verbs (where the database is, or through a server in remote mode),
so they work whether or not a process executes the run. `runs.py` registers them on the
`runs` group.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from stead.cli.common import DbOption, err, fail, handle_errors, open_db, out, resolve_run
from stead.cli.render import (
    FINAL_STATES,
    clip,
    fmt_time,
    input_fields,
    table,
    wait_detail,
    wait_text,
)
from stead.errors import InvalidInput
from stead.store.base import Store
from stead.store.waits import INPUT_TOPIC, MessageRecord, StatusRecord, WaitRecord, json_value

RunIdArg = Annotated[str, typer.Argument(
    metavar="RUN_ID", show_default=False,
    help="A run id (as `stead runs ls` shows it), or a unique prefix of one.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ENDED = FINAL_STATES  # a run in these states takes no more messages nor sets status
POLL_FIRST_S, POLL_MAX_S = 0.05, 1.0  # `status --wait` reads again this often (growing)

SEND_HELP = (
    "Send a message to a run. The flow takes it with `stead.receive(TOPIC)`; a message sent "
    "before the flow gets there waits for it, in send order. A run parked waiting for this "
    "topic is woken (Paused -> Pending) and any worker resumes it.\n\n"
    "PAYLOAD is JSON text, @FILE to read it from a file, or - to read it from stdin. With "
    "--key, a message with the same key sent to the run before is not stored again (the "
    "first one is shown, marked duplicate).\n\n"
    "Exit code 2 when PAYLOAD is not JSON, or the run is unknown or finished.\n\n"
    "Example: [bold]stead runs send 3f2a9c1e4b5d payment '{\"ref\": \"tx-81\"}' "
    "--key tx-81[/]")
INPUT_HELP = (
    "Answer a run waiting in `stead.wait_for_input(Model, ...)`. JSON (text, @FILE or -) is "
    "checked against the model's JSON Schema before it is stored: input that does not fit "
    "is refused with "
    "the field and the reason, the form is shown, the run keeps waiting, and the exit code "
    "is 1. Valid input resumes the run with a typed model instance.\n\n"
    "Exit code 2 when JSON is not JSON or the run does not wait for input.\n\n"
    "Example: [bold]stead runs input 3f2a9c1e4b5d '{\"approved\": true, \"approver\": "
    "\"ana\"}'[/]")
STATUS_HELP = (
    "Show the values a run published with `stead.set_status(KEY, VALUE)`: all of them, or "
    "the one of KEY (printed as it is for a string, else as JSON). Works while the run "
    "executes, while it is parked, and after it ended.\n\n"
    "With --wait SECONDS, wait until the run sets KEY; exit code 1 when it does not in "
    "time (or when KEY is not set, without --wait).\n\n"
    "Example: [bold]stead runs status 3f2a9c1e4b5d stage --wait 30[/]")
MESSAGES_HELP = (
    "List the messages sent to a run, in send order, with their state: pending (not yet "
    "received), consumed (by the receive step shown) or rejected (refused by the flow's "
    "validator), and the reply to a request.\n\n"
    "Example: [bold]stead runs messages 3f2a9c1e4b5d --topic payment[/]")


# -- reading JSON from the command line ------------------------------------------------------
def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or Infinity)")


def read_json(text: str, argument: str) -> str:
    """The JSON text given as `argument` on the command line (text, @FILE, or - for stdin),
    compact; one clear error (exit code 2) naming the argument and the position otherwise.

    >>> read_json('{"ref": "tx-81"}', "PAYLOAD")
    '{"ref":"tx-81"}'
    """
    where = ""
    if text == "-":
        text, where = sys.stdin.read(), " (read from stdin)"
    elif text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text, where = path.read_text(), f" (read from {path})"
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{argument}: cannot read {path}: {exc}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        fail(f"{argument}{where} is not JSON: {exc.msg} at line {exc.lineno} column "
             f"{exc.colno} (character {exc.pos}): {clip(text, 60)!r}")
    except ValueError as exc:
        fail(f"{argument}{where}: {exc}")
    if isinstance(value, float) and not math.isfinite(value):  # 1e999
        fail(f"{argument}{where}: {text.strip()!r} is too large a number for JSON")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _shown(value_json: str | None, limit: int = 80) -> str:
    """JSON text as a person reads it: a string as itself, anything else as JSON."""
    if value_json is None:
        return ""
    try:
        value = json.loads(value_json)
    except ValueError:
        return clip(value_json, limit)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return clip(text, limit)


# -- send ------------------------------------------------------------------------------------
def _delivery(wait: WaitRecord | None, topic: str, before: str, after: str) -> str:
    """What the message does to the run: wakes it, is awaited, or waits for its receive."""
    if before == "Paused" and after == "Pending":
        return ("it woke the run (Paused -> Pending): a worker serving its queue resumes it "
                "and the flow receives the message")
    if wait is not None and wait.topic == topic and wait.kind in ("message", "input"):
        return "the run waits for it and takes it now"
    return f"it waits until the flow calls stead.receive({topic!r})"


@handle_errors
def send_message(
    run_id: RunIdArg,
    topic: Annotated[str, typer.Argument(metavar="TOPIC", show_default=False,
                                         help="The topic the flow receives on.")],
    payload: Annotated[str, typer.Argument(
        metavar="PAYLOAD", show_default=False,
        help="The message: JSON text, @FILE, or - for stdin.")],
    key: Annotated[str | None, typer.Option(
        "--key", "-k", metavar="IDEMPOTENCY_KEY",
        help="Store the message once per run and key: sending again changes nothing.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Send a message to a run (see SEND_HELP)."""
    text = read_json(payload, "PAYLOAD")
    store = open_db(db)
    run = resolve_run(store, run_id)
    wait = store.get_wait(run.id)  # type: ignore[attr-defined]
    message, created = store.send_message(  # type: ignore[attr-defined]
        run.id, topic, text, key, time.time(), sender="cli")
    console = out()
    if not created:
        console.print(f"message {message.id} to run {escape(run.id)} on topic "
                      f"{escape(repr(message.topic))}: duplicate (key {escape(repr(key))} was "
                      f"sent at {fmt_time(message.sent_at)}; nothing changed, it is "
                      f"{message.state})")
        return
    after = store.get_run(run.id).state
    console.print(f"message {message.id} sent to run {escape(run.id)} on topic "
                  f"{escape(repr(topic))} (new); "
                  f"{escape(_delivery(wait, topic, run.state, after))}")


# -- input -----------------------------------------------------------------------------------
def _form(wait: WaitRecord) -> str:
    """The question of an input wait and its fields, for a person to answer it."""
    description = str(wait_detail(wait).get("description") or "")
    lines = [f"the run asks: {description}"] if description else []
    fields = input_fields(wait)
    if fields:
        lines += ["fields:", *(f"  {f}" for f in fields)]
    return "\n".join(lines)


@handle_errors
def send_input(
    run_id: RunIdArg,
    value: Annotated[str, typer.Argument(
        metavar="JSON", show_default=False,
        help="The answer: JSON text (an object of the form's fields), @FILE, or - for stdin.")],
    db: DbOption = None,
) -> None:
    """Answer a run waiting for input (see INPUT_HELP)."""
    text = read_json(value, "JSON")
    store = open_db(db)
    run = resolve_run(store, run_id)
    wait = store.get_wait(run.id)  # type: ignore[attr-defined]
    if wait is None or wait.kind != "input":
        what = f"it waits for {wait_text(wait, time.time())}" if wait else "it waits for nothing"
        fail(f"run {run.id} is not waiting for input ({run.state}; {what}); only a run "
             "waiting in stead.wait_for_input takes input")
    try:
        message, _ = store.send_message(  # type: ignore[attr-defined]
            run.id, INPUT_TOPIC, text, None, time.time(), sender="cli")
    except InvalidInput as exc:
        field = exc.field or "(the whole input)"
        err().print(f"[bold red]error:[/] [red]input refused: field {escape(field)}: "
                    f"{escape(exc.reason or str(exc))}[/]")
        form = _form(wait)
        if form:
            err().print(escape(form))
        err().print(f"run {escape(run.id)} keeps waiting for input")
        raise typer.Exit(1) from None
    after = store.get_run(run.id).state
    resumed = ("it resumes (Paused -> Pending: a worker serving its queue takes it)"
               if run.state == "Paused" and after == "Pending"
               else "the run takes it now")
    out().print(f"input accepted for run {escape(run.id)} (message {message.id}); "
                f"{escape(resumed)}")


# -- status ----------------------------------------------------------------------------------
def _status_dict(r: StatusRecord) -> dict[str, Any]:
    return {"key": r.key, "value": json_value(r.value), "updated_at": r.updated_at,
            "step_key": r.step_key}


def _wait_for_status(store: Store, run_id: str, key: str, seconds: float
                     ) -> list[StatusRecord]:
    """Read the run's value of `key` until it is set; [] after `seconds`, or once the run
    ended without setting it (it never will)."""
    deadline, pause = time.monotonic() + seconds, POLL_FIRST_S
    while True:
        found = store.get_status(run_id, key)  # type: ignore[attr-defined]
        if found:
            return list(found)
        if store.get_run(run_id).state in ENDED:
            return list(store.get_status(run_id, key))  # type: ignore[attr-defined]
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        time.sleep(min(pause, left))
        pause = min(pause * 2, POLL_MAX_S)


@handle_errors
def show_status(
    run_id: RunIdArg,
    key: Annotated[str | None, typer.Argument(
        metavar="[KEY]", show_default=False, help="Only this value (else all of them).")
    ] = None,
    wait: Annotated[float | None, typer.Option(
        "--wait", "-w", metavar="SECONDS", min=0,
        help="Wait up to this long for the run to set KEY.")] = None,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Show a run's published values (see STATUS_HELP)."""
    if wait is not None and key is None:
        raise typer.BadParameter("--wait needs a KEY to wait for", param_hint="--wait")
    store = open_db(db)
    run = resolve_run(store, run_id)
    if key is not None:
        found = (_wait_for_status(store, run.id, key, wait) if wait is not None
                 else store.get_status(run.id, key))  # type: ignore[attr-defined]
        if not found:
            state = store.get_run(run.id).state
            if wait is not None and state not in ENDED:
                fail(f"run {run.id} did not set status {key!r} within {wait:g} s "
                     f"(it is {state})", 1)
            published = [r.key for r in store.get_status(run.id)]  # type: ignore[attr-defined]
            known = (f"it published: {', '.join(published)}" if published
                     else "it published no status")
            fail(f"run {run.id} has no status {key!r} ({state}; {known})", 1)
        record = found[0]
        typer.echo(record.value if as_json else _shown(record.value, 1_000_000))
        return
    records = store.get_status(run.id)  # type: ignore[attr-defined]
    if as_json:
        typer.echo(json.dumps([_status_dict(r) for r in records], indent=2,
                              ensure_ascii=False))
        return
    console = out()
    if not records:
        console.print(f"Run {escape(run.id)} has published no status (it sets one with "
                      "stead.set_status(KEY, VALUE)).")
        return
    tbl = table()
    tbl.add_column("Key", no_wrap=True)
    tbl.add_column("Value", overflow="fold")
    tbl.add_column("Updated", no_wrap=True)
    tbl.add_column("Step", no_wrap=True)
    for r in records:
        tbl.add_row(r.key, _shown(r.value, 200), fmt_time(r.updated_at), r.step_key or "")
    console.print(tbl)


# -- messages --------------------------------------------------------------------------------
def message_dict(m: MessageRecord) -> dict[str, Any]:
    """A message as `--json` prints it (payload and reply as JSON values)."""
    return {"id": m.id, "run_id": m.run_id, "topic": m.topic, "payload": json_value(m.payload),
            "sent_at": m.sent_at, "idempotency_key": m.idempotency_key, "sender": m.sender,
            "expects_reply": m.expects_reply, "state": m.state, "step_key": m.step_key,
            "consumed_at": m.consumed_at, "reply": json_value(m.reply),
            "reply_error": m.reply_error, "replied_at": m.replied_at}


MESSAGE_STYLES = {"pending": "blue", "consumed": "green", "rejected": "red"}


@handle_errors
def list_messages(
    run_id: RunIdArg,
    topic: Annotated[str | None, typer.Option(
        "--topic", "-t", help="Only messages on this topic.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1,
                                       help="Show at most this many.")] = 100,
    as_json: JsonOption = False,
    db: DbOption = None,
) -> None:
    """List a run's messages (see MESSAGES_HELP)."""
    store = open_db(db)
    run = resolve_run(store, run_id)
    messages = store.list_messages(run.id, topic, limit)  # type: ignore[attr-defined]
    if as_json:
        typer.echo(json.dumps([message_dict(m) for m in messages], indent=2,
                              ensure_ascii=False))
        return
    console = out()
    if not messages:
        on = f" on topic {topic!r}" if topic else ""
        console.print(f"No messages{escape(on)} for run {escape(run.id)}. Send one with: "
                      f"stead runs send {escape(run.id)} TOPIC PAYLOAD")
        return
    tbl = table()
    for name in ("Id", "Sent", "Topic", "State", "Step", "Key"):
        tbl.add_column(name, no_wrap=True, justify="right" if name == "Id" else "left")
    tbl.add_column("Payload", overflow="fold")
    tbl.add_column("Reply", overflow="fold")
    for m in messages:
        reply = (f"error: {m.reply_error}" if m.reply_error is not None
                 else _shown(m.reply, 60) if m.replied_at is not None
                 else "(waiting)" if m.expects_reply else "")
        topic_shown = "input" if m.topic == INPUT_TOPIC else m.topic
        state = Text(m.state, style=MESSAGE_STYLES.get(m.state, ""))
        tbl.add_row(str(m.id), fmt_time(m.sent_at), topic_shown, state, m.step_key or "",
                    m.idempotency_key or "", _shown(m.payload, 80), reply)
    console.print(tbl)
