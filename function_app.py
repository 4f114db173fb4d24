"""The Function App: creates the app and registers the blueprints from ``functions/``."""

import azure.functions as func

from functions.arm_events import bp as arm_events

app = func.FunctionApp()
app.register_functions(arm_events)
