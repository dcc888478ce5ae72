"""Keep ``pytest tests/`` out of the Lightning-compatibility harness: Lightning's own test files
(upstream/) and the shim they run with are driven by run_lightning_tests.py only."""

collect_ignore = ["upstream", "shim", "run_lightning_tests.py"]
