"""The dashboard's buttons: run now, pause and resume a task.

Contract: ``POST /tasks/{task}/run-now|pause|resume`` does what ``soa tasks run-now|pause|
resume`` does, after :func:`~engine.service_host.api.dashboard.login.check_form` (else
403). It answers with a redirect to the form's ``next`` (POST/redirect/GET) and a one-line
message: what was done, or the service's refusal as the CLI prints it. Another action is
404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from engine.domain.errors import SoaError
from engine.service_host.api.dashboard.login import check_form, require_login
from engine.service_host.api.dashboard.rendering import redirect, render, services_of

TASK_ACTIONS = ("run-now", "pause", "resume")

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_login)])


@router.post("/tasks/{task}/{action}")
def task_action(request: Request, task: str, action: str,
                csrf: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/",
                ) -> Response:
    """Run now, pause or resume the task, as ``soa tasks run-now|pause|resume`` does."""
    refused = check_form(request, csrf)
    if refused is not None:
        return refused
    services = services_of(request)
    if action not in TASK_ACTIONS:
        return render(request, "message.html", 404, title="Not found",
                      message=f"There is no task action {action!r}.")
    try:
        if action == "run-now":
            run_id = services.runs.run_now(task)
            text = f"run {run_id} recorded; the running host starts it"
        else:
            done = f"{action}d"
            changed = services.tasks.set_task_state(task, action)
            name = services.tasks.task(task).task.name
            text = f"task {name!r} {done}" if changed else f"task {name!r} was already {done}"
    except SoaError as error:
        return redirect(request, next, text=error.message, error=True)
    return redirect(request, next, text=text)
