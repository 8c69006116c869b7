"""The controller side of a run, shared by ``bp apply``, ``bp rollback`` and ``bp status``.

- :mod:`~slmops_bp.run.rundir`: a fresh private data dir per run, old ones pruned;
- :mod:`~slmops_bp.run.execute`: ansible-runner on a rendered tree, one run at a time;
- :mod:`~slmops_bp.run.outcome`: the run's events → each host's outcome and the stage gate's
  verdict (read from structured data the playbook returns, never from names);
- :mod:`~slmops_bp.run.progress`: live progress while the events arrive;
- :mod:`~slmops_bp.run.recover`: after an interrupt, no device left on an unchecked release;
- :mod:`~slmops_bp.run.history` / :mod:`~slmops_bp.run.record`: the local audit log;
- :mod:`~slmops_bp.run.summary`: the per-host table and the exit status.
"""
