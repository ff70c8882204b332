"""The console's pages, one module per area.

``dashboards.app.create_app`` mounts every module here that defines
``routes() -> list[starlette.routing.BaseRoute]``. A view guards each endpoint
with ``dashboards.auth.require(...)``, answers with ``dashboards.pages.render``
and records operator actions with ``dashboards.audit.audit`` (see
``dashboards/README.md``).
"""
