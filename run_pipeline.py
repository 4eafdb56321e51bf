"""Train a model with RLVR: ``python run_pipeline.py [group=option ...] [key=value ...]``.

The same command as the installed ``rlvr-train``: Hydra composes the config (``conf/``) with the command line,
the PipelineOrchestrator runs the job. A config mistake prints one line and exits with status 2.
"""

from rlvr.cli import main

if __name__ == "__main__":
    main()
