"""The offline end-to-end demo behind `make demo` / `python -m bot demo`.

It starts the Discord emulator, the EvoLink simulator and the real bot as three child
processes on loopback, acts as a member (`/edit` with a generated clip and reference image),
prints a live transcript of what Discord shows, saves the delivered video under ./demo-out/
and shuts everything down. `DEMO_SCENARIO=happy|failure|quota|restart` picks what it shows.

    processes.py   start/stop the children, parse their ready lines, guaranteed cleanup
    control.py     HTTP clients for the emulator's /_control and the simulator's /_sim
    transcript.py  long-polls the emulator and prints new and edited messages
    session.py     one run: the bot's environment, the member's actions, the checks
    scenarios.py   happy, failure, quota, restart
    runner.py      run_demo (async entry point) and main (exit code)
"""

from sandbox.demo.processes import DemoError
from sandbox.demo.runner import DemoResult, main, run_demo
from sandbox.demo.scenarios import SCENARIOS

__all__ = ["SCENARIOS", "DemoError", "DemoResult", "main", "run_demo"]
