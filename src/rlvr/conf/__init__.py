"""The Hydra config tree, shipped inside the package (``pkg://rlvr.conf``). The repository's top-level ``conf``
is a link to this directory."""
