"""The one way the commands submit a process and, with ``--wait``, wait for it and report.

Every submitting command ends the same way: a clear error when the daemon is not running (instead of a
traceback), the pk and how to follow it, and with ``--wait`` either the result or an error that says the
process keeps running or how it failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import click


def wait_for(nodes, timeout: float, poll: float = 1.0) -> bool:
    """Wait until every node is terminated; return False on timeout (the processes keep running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(node.is_terminated for node in nodes):
            return True
        time.sleep(poll)
    return all(node.is_terminated for node in nodes)


def submit(process, **inputs):
    """Submit to the daemon of the loaded profile; a daemon that is not running is a usage error with the fix."""
    from aiida.common.exceptions import InvalidOperation
    from aiida.engine import submit as submit_process

    try:
        return submit_process(process, **inputs)
    except InvalidOperation as exception:
        raise click.ClickException(f'{exception} Start it with `verdi daemon start`.') from None


def finish(node, name: str, wait_s: float, report: Callable | None = None, poll: float = 2.0) -> None:
    """Wait up to ``wait_s`` for ``node``, then ``report(node)``; an unfinished or failed process is an error."""
    if not wait_for([node], wait_s, poll=poll):
        raise click.ClickException(f'{name}<{node.pk}> not finished after {wait_s:.0f} s (it keeps running)')
    if report is not None:
        report(node)
    if not node.is_finished_ok:
        raise click.ClickException(f'{name}<{node.pk}>: [{node.exit_status}] {node.exit_message}')


def submit_and_wait(builder, wait_s: float = 0.0, *, describe: str = '', report: Callable | None = None, poll=2.0):
    """Submit ``builder``, say what was submitted (``describe`` adds to the line) and, with ``wait_s``, finish it."""
    name = builder.process_class.__name__
    node = submit(builder)
    click.echo(f'submitted {name}<{node.pk}>{describe}; follow it with `verdi process report {node.pk}`')
    if wait_s > 0:
        finish(node, name, wait_s, report, poll)
    return node
