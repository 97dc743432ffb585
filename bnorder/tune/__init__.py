"""Ray Tune and Optuna adapters around the plain training core. Import lazily: nothing below
``bnorder.train`` imports this package."""

import os

# Under `uv run`, Ray would ship the working dir and rebuild the project's venv for every job's
# workers. bnorder's workers already have bnorder (the same venv locally; the cluster setup
# installs it on nodes), so that only costs time. Ray reads this when it is first imported.
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
