"""CalcJobs that run our own console scripts (``ionfield-train``) on any AiiDA computer."""
