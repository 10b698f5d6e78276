"""The one Azure Functions app: the HTTP API plus every queue, topic and timer trigger."""

import azure.functions as func

from functions import dispatch, events, provider_events, timers
from functions.http import asgi_app

app = func.AsgiFunctionApp(app=asgi_app, http_auth_level=func.AuthLevel.ANONYMOUS)
for blueprint in (dispatch.bp, provider_events.bp, events.bp, timers.bp):
    app.register_functions(blueprint)
