"""The HTTP API and the dashboard the host serves (FastAPI on uvicorn).

Every endpoint calls the same application services as the CLI and adds no rules of
its own; :func:`engine.service_host.api.app.create_app` builds the application.
"""
