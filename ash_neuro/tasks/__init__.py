"""The downstream tasks (retrieval, VQA, NLVR, VE, grounding), one registered `Task` class
each (`base.py` says what a task bundles); `registry.TASKS.get(name)(cfg)` builds one."""
