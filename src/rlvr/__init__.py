"""rlvr: reinforcement learning from verifiable rewards, configured with Hydra.

Entry points: ``python run_pipeline.py`` (training), ``python -m rlvr.benchmark`` (models x tasks).
"""

__version__ = "0.1.0"
