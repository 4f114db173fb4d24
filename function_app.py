"""The Function App: creates the app and registers the blueprints from ``functions/``."""

import azure.functions as func

from functions.alert_webhook import bp as alert_webhook
from functions.arm_events import bp as arm_events
from functions.diagnose_http import bp as diagnose
from functions.handover import bp as handover
from functions.health import bp as health
from functions.registry_events import bp as registry_events
from functions.timers import bp as timers

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (arm_events, registry_events, timers, handover, alert_webhook, diagnose, health):
    app.register_functions(blueprint)
