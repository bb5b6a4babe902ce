"""The serving benchmark's pieces: targets (server control), load (load generators), plan, runner, report."""
