"""Transport analysis of (field) MD trajectories as plain Python: usable on any trajectory, no AiiDA.

* :mod:`.replicas`: replicas of one condition, validated (same species, cadence), trimmed and
  expressed in the field frame (along / across E);
* :mod:`.diffusion`: tracer and collective MSD, D*, charge diffusion and conductivity with
  uncertainties (kinisi), and the check that a trajectory is diffusive before anything is fitted;
* :mod:`.drift`: drift velocity and mobility under field, and whether the response is linear;
* :mod:`.arrhenius`: activation energy and prefactor from the E = 0 runs (kinisi);
* :mod:`.condition` and :mod:`.campaign`: the numbers of one (T, E, Z* mode) condition and of a
  whole campaign (field enhancement, anisotropy, off-diagonal ablation, warnings);
* :mod:`.plots` and :mod:`.report`: PNG figures and a self-contained HTML report.

``ionfield.workflows.transport`` calls these as calcfunctions; ``ionfield campaign analyse`` runs
them on trajectory files.
"""
