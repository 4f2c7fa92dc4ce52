"""Performance measurement: FLOPs of a traced iteration, the machine's peak, timed runs."""
