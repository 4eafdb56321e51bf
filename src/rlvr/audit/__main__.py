"""``python -m rlvr.audit <overrides>``: the reward-hacking audit of the configured data, prompt and reward.

Takes the same overrides as a run (``data=...``, ``reward=...``, ``prompts=...``, ``experiment=...``) plus
``audit.*`` (:class:`rlvr.audit.AuditSettings`). Loads the data (no model), scores the hack battery of
:mod:`rlvr.audit` on real rows with every configured reward function, prints the table and exits 0 when no hack
pays, 1 when one does (the verdict names it), 2 for a config mistake (one line, before anything loads). Reward
functions run in threads here (``reward.isolation=thread``): the audit runs them on a few hundred completions.
"""

from __future__ import annotations

import logging
import sys

from rlvr.audit import audit
from rlvr.config import build, fail, load_config, one_line, validate, with_defaults
from rlvr.errors import ConfigError
from rlvr.scoring import Scorer


def main(argv: list[str] | None = None) -> int:
    """Run the audit for ``argv`` (the command line's overrides); returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = with_defaults(load_config(list(sys.argv[1:] if argv is None else argv), config_name="audit"))
        cfg.reward.isolation = "thread"
        audit_cfg = cfg.pop("audit")  # the audit's own node: not a setting of the pipeline
        validate(cfg)
        validate(audit_cfg, "audit")
        settings, data, prompts = build(audit_cfg), build(cfg.data), build(cfg.prompts)
        suite = build(cfg.reward)
        splits = data.load(prompts)
    except ConfigError as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001 - a composition error becomes one line; a bug keeps its traceback
        line = one_line(e)
        if line is None:
            raise
        fail(line)
    split = splits.train if settings.split == "train" else splits.test
    rows = split.select(range(min(settings.rows, len(split)))).to_list()
    try:
        report = audit(rows, Scorer(prompts.answer_format, data.verifier), suite, settings.max_hack_fraction,
                       settings.seed)
    except ValueError as e:
        fail(str(e))
    finally:
        suite.close()
    names = ", ".join(f"{n} x{w:g}" for n, w in suite.weights.items())
    fmt = prompts.answer_format
    where = " ... ".join(fmt.answer_markers) if fmt.answer_markers else f"the {fmt.answer_style} style"
    print(f"Reward-hacking audit: {cfg.data._target_.rsplit('.', 1)[-1]} ({data.verifier.answer_type} answers), "
          f"answer in {where}, reward {names}\n")
    print(report.table())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
