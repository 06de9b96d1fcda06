"""``soa simulate``: simulators for trials and the demo; they never open the store."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import click

from engine.service_host.cli_support import EXIT_OK, context, print_json


@click.group()
def simulate() -> None:
    """Simulators of the outside world for trials and the demo (nothing leaves this
    machine)."""


@simulate.command("mail")
@click.option("--smtp-port", type=click.IntRange(0, 65535), default=2525, show_default=True,
              help="SMTP port on 127.0.0.1 (0: any free port).")
@click.option("--sms-port", type=click.IntRange(0, 65535), default=8025, show_default=True,
              help="HTTP port of the SMS gateway and of /_sim/messages (0: any free port).")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path),
              help="File of the caught messages [default: SOA_HOME/simulator/messages.jsonl].")
@click.option("--list", "list_messages", is_flag=True,
              help="Print the caught messages as JSON and exit.")
@click.option("--clear", is_flag=True, help="Delete the caught messages and exit (after --list).")
def mail(smtp_port: int, sms_port: int, store_path: Path | None, list_messages: bool,
         clear: bool) -> int:
    """Catch mail (SMTP) and SMS (the HTTP gateway contract) on 127.0.0.1 instead of
    delivering them; runs in the foreground until Ctrl-C or SIGTERM.

    Point a company's e-mail account at 127.0.0.1:SMTP-PORT with security "none" and its
    SMS gateway at http://127.0.0.1:SMS-PORT/sms; see what arrived with --list or at
    http://127.0.0.1:SMS-PORT/_sim/messages.
    """
    from engine.simulators.mail_catcher import (
        CatcherPortError,
        MailCatcher,
        clear_messages,
        default_store_path,
        read_messages,
    )

    store = store_path or default_store_path(context().settings.home)
    if list_messages or clear:
        if list_messages:
            print_json(read_messages(store))
        if clear:
            count = clear_messages(store)
            click.echo(f"deleted {count} caught message(s) from {store}", err=list_messages)
        return EXIT_OK

    # aiosmtpd warns of its own deprecated attribute at every login
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    catcher = MailCatcher(smtp_port, sms_port, store)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            catcher.start()
        except CatcherPortError as error:
            option = "--smtp-port" if error.channel == "smtp" else "--sms-port"
            raise click.UsageError(error.explained(option)) from None
        try:
            click.echo(f"mail catcher: SMTP on 127.0.0.1:{catcher.smtp_port}, SMS on "
                       f"{catcher.sms_url}, messages at {catcher.messages_url}")
            sys.stdout.flush()
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            catcher.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(f"mail catcher stopped; the messages are in {store}", err=True)
    return EXIT_OK


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the catcher as Ctrl-C does."""
    raise KeyboardInterrupt
