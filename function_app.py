"""The one Azure Functions app: the HTTP API plus every queue, topic and timer trigger."""

import azure.functions as func

from functions import analytics, dispatch, events, provider_events, timers, webhooks
from functions.http import asgi_app
from shared.config import Settings

# Settings are checked when the host loads the app, so a missing or malformed one
# stops it at start-up with a message naming it (never its value), instead of failing
# every invocation later. Reading them opens nothing and builds no client.
Settings()

app = func.AsgiFunctionApp(app=asgi_app, http_auth_level=func.AuthLevel.ANONYMOUS)
blueprints = (dispatch.bp, provider_events.bp, events.bp, webhooks.bp, analytics.bp, timers.bp)
for blueprint in blueprints:
    app.register_functions(blueprint)
