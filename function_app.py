"""The Function App: creates the app and registers the blueprints from ``functions/``."""

import azure.functions as func

from functions.arm_events import bp as arm_events
from functions.diagnose_http import bp as diagnose
from functions.health import bp as health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (arm_events, diagnose, health):
    app.register_functions(blueprint)
