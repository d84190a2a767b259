"""`python -m bench.instrumented_bot`: the real bot (`python -m bot run`, unchanged) with the
bot-side timestamps of bench/instrument.py installed. Used by figure 1 only."""

from __future__ import annotations

from bench.instrument import install

if __name__ == "__main__":
    install()
    from bot.__main__ import main

    raise SystemExit(main(["run"]))
