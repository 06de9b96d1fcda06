"""``soa simulate``: simulators for trials and the demo; they never open the store."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Protocol

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

    def start() -> None:
        try:
            catcher.start()
        except CatcherPortError as error:
            option = "--smtp-port" if error.channel == "smtp" else "--sms-port"
            raise click.UsageError(error.explained(option)) from None

    return _serve_in_foreground(
        start, catcher.stop,
        lambda: (f"mail catcher: SMTP on 127.0.0.1:{catcher.smtp_port}, SMS on "
                 f"{catcher.sms_url}, messages at {catcher.messages_url}"),
        f"mail catcher stopped; the messages are in {store}")


def _serve_in_foreground(start: Callable[[], None], stop: Callable[[], None],
                         ready: Callable[[], str], stopped: str) -> int:
    """``start``, print ``ready()``, serve until Ctrl-C or SIGTERM, ``stop`` and print
    ``stopped`` to stderr. ``start`` raises a usage error for a port it cannot use."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        start()
        try:
            click.echo(ready())
            sys.stdout.flush()
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(stopped, err=True)
    return EXIT_OK


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops serving as Ctrl-C does."""
    raise KeyboardInterrupt


class _Simulator(Protocol):
    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _serve_simulator(simulator: _Simulator, name: str, where: str) -> int:
    """Serve ``simulator`` in the foreground; its ready line is ``name: where``
    (``{url}`` in it: the URL it listens on)."""
    from engine.simulators.http_server import SimulatorPortError

    def start() -> None:
        try:
            simulator.start()
        except SimulatorPortError as error:
            raise click.UsageError(error.explained("--port")) from None

    return _serve_in_foreground(start, simulator.stop,
                                lambda: f"{name}: {where.format(url=simulator.url)}",
                                f"{name} stopped; its state is gone")


@simulate.command("partners")
@click.option("--port", type=click.IntRange(0, 65535), default=8030, show_default=True,
              help="HTTP port on 127.0.0.1 (0: any free port).")
@click.option("--seed", "seed_file", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON file {partner: {collection: [objects]}} of import objects to serve.")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of requests answered 5xx (half of them after the work is done).")
@click.option("--latency", "latency_ms", type=click.IntRange(0), default=0, show_default=True,
              help="Delay of every answer, in milliseconds.")
@click.option("--reset-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of connections closed without an answer (half after the work).")
@click.option("--throttle", type=click.IntRange(0), default=0, show_default=True,
              help="Requests per partner per second before 429 (0: no limit).")
def partners(port: int, seed_file: Path | None, error_rate: float, latency_ms: int,
             reset_rate: float, throttle: int) -> int:
    """Simulate the seven partner systems (wszystkopl, esklep, detal, mobile, xl, hrm,
    apfino) over HTTP on 127.0.0.1, in memory; runs in the foreground until Ctrl-C or
    SIGTERM.

    A company's base URL for a partner is http://127.0.0.1:PORT/<partner>; see and steer
    the simulator at /_sim/state, /_sim/seed, /_sim/generate, /_sim/faults, /_sim/reset
    (docs/partners/README.md).
    """
    from engine.simulators.partners import Faults, PartnerSimulator, SimulatorInputError

    faults = Faults(error_rate=error_rate, latency_ms=latency_ms, reset_rate=reset_rate,
                    throttle=throttle)
    try:
        simulator = PartnerSimulator(port, seed_file=seed_file, faults=faults)
    except SimulatorInputError as error:
        raise click.UsageError(f"--seed: {error}") from None
    return _serve_simulator(
        simulator, "partner simulator",
        "{url}/<partner>, state at {url}/_sim/state")


@simulate.command("ksef")
@click.option("--port", type=click.IntRange(0, 65535), default=8040, show_default=True,
              help="HTTP port on 127.0.0.1 (0: any free port).")
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of requests answered 5xx (half of them after the work is done).")
@click.option("--latency", "latency_ms", type=click.IntRange(0), default=0, show_default=True,
              help="Delay of every answer, in milliseconds.")
@click.option("--throttle-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of requests answered 429 with Retry-After: 1.")
@click.option("--lost-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of requests done but closed without an answer.")
@click.option("--processing-seconds", type=click.FloatRange(0), default=0.0,
              show_default=True, help="How long an uploaded invoice stays in status 150.")
@click.option("--rate-limit", type=click.IntRange(0), default=0, show_default=True,
              help="Requests per second before 429 (0: no limit).")
def ksef(port: int, error_rate: float, latency_ms: int, throttle_rate: float,
         lost_rate: float, processing_seconds: float, rate_limit: int) -> int:
    """Simulate KSeF 2.0 (the national e-invoicing system) over HTTP on 127.0.0.1, in
    memory; runs in the foreground until Ctrl-C or SIGTERM.

    A company's KSeF base URL is http://127.0.0.1:PORT (the SDK adds /v2); get a KSeF
    token or a certificate for a NIP at /_sim/tokens or /_sim/certificates, and see and
    steer the simulator at /_sim/state, /_sim/faults, /_sim/reset.
    """
    from engine.simulators.ksef import KsefFaults, KsefSimulator

    faults = KsefFaults(error_rate=error_rate, latency_ms=latency_ms,
                        throttle_rate=throttle_rate, lost_rate=lost_rate)
    simulator = KsefSimulator(port, faults=faults, processing_seconds=processing_seconds,
                              rate_limit=rate_limit)
    return _serve_simulator(
        simulator, "KSeF simulator",
        "{url} (the SDK adds /v2), state at {url}/_sim/state")
