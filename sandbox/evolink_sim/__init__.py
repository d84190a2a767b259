"""Local EvoLink API simulator (`kling-o1-video-edit[-fast]`) for tests, demo and benchmarks.

    from sandbox.evolink_sim import EvolinkSimulator, TaskScript

    async with EvolinkSimulator(time_scale=1000, allow_private_urls=True) as sim:
        sim.script_next_task(TaskScript(outcome="failed", error_code="content_policy_violation"))
        ...  # point the client at sim.base_url with "Bearer sk-evo-test"

See README.md in this package for behaviour, the `/_sim/` control API and a curl walkthrough.
"""

from .clock import SimClock
from .contract import MODELS, TASK_ERROR_MESSAGES, ModelSpec
from .media_check import InputVerdict
from .script import ResultOutage, TaskScript
from .simulator import EvolinkSimulator
from .tasks import CallbackAttempt, SimTask

__all__ = [
    "MODELS",
    "TASK_ERROR_MESSAGES",
    "CallbackAttempt",
    "EvolinkSimulator",
    "InputVerdict",
    "ModelSpec",
    "ResultOutage",
    "SimClock",
    "SimTask",
    "TaskScript",
]
