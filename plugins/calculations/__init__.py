"""CalcJobs that run our own console scripts (``ionfield-train``, ``ionfield-md``) on any AiiDA computer."""
