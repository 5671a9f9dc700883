# Imported before tests/conftest.py imports torch: `import wcbench` sets OMP_WAIT_POLICY=PASSIVE (unless
# the user set one) while the OpenMP runtime can still read it, so the suite's idle torch threads sleep
# instead of spinning on a loaded machine (issue #16).
import wcbench  # noqa: F401
