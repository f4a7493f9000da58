"""``QeFrameWorkChain`` (``ionfield.label.qe``): one structure labelled by pw.x (E, F, S) and ph.x (Z*, eps_inf).

The SCF is a ``PwBaseWorkChain`` and the DFPT a ``PhBaseWorkChain`` at Gamma with ``epsil=.true.`` and
``trans=.false.``, so aiida-quantumespresso's restart handlers apply: an SCF that does not converge is
restarted with a smaller ``mixing_beta``, and both restart after running out of walltime. A ph.x run that
does not converge is recovered with a smaller ``alpha_mix(1)`` by :class:`DfptWorkChain` (the stock handler
sets ``nmix_ph = 8``, which ph.x 6.7, Debian's, refuses). A pw.x or ph.x job killed by a signal (the
out-of-memory killer, a failing node, ``kill -9``) is rerun once by :class:`ScfWorkChain` / :class:`DfptWorkChain`
(:class:`KilledJobRerunMixin`); killed again, the structure fails with ``ERROR_SCF_KILLED`` or keeps E, F, S.

Born charges need an insulator, so with ``bec`` the SCF uses fixed occupations and a few empty bands to
measure the gap. A structure with an odd number of electrons, or a gap below ``min_gap``, is a metal for
this purpose: its energy, forces and stress come from a smeared SCF and the workchain exits with
``ERROR_NO_GAP`` after emitting the frame. Without ``bec`` the SCF is smeared from the start (cold
smearing changes an insulator's energy by nothing measurable, and keeps a metal's forces right).

All inputs except ``structure`` are the same for every structure of a batch (cutoffs, bands and the
SCF threshold are derived per structure here), which is what lets ``LabelWorkChain`` expose them once.
"""

from __future__ import annotations

import math
import re

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ProcessHandlerReport, ToContext, WorkChain, calcfunction, if_, process_handler
from aiida.plugins import CalculationFactory, GroupFactory, WorkflowFactory

from ionfield.models import keys
from ionfield.models.labels import qe as qe_labels
from ionfield.models.structures.defects import formal_charge
from ionfield.plugins.exit_codes import statuses
from ionfield.workflows.protocols import ProtocolMixin

from .frame import define_frame_spec, frame_node
from .protocols import ProtocolFile

__all__ = (
    'DfptWorkChain',
    'KilledJobRerunMixin',
    'QeFrameWorkChain',
    'ScfWorkChain',
    'kill_evidence',
    'kill_signal_in',
    'next_dfpt_mixing',
    'qe_frame',
)

PwBaseWorkChain = WorkflowFactory('quantumespresso.pw.base')
PhBaseWorkChain = WorkflowFactory('quantumespresso.ph.base')
PwCalculation = CalculationFactory('quantumespresso.pw')
PhCalculation = CalculationFactory('quantumespresso.ph')
PseudoPotentialFamily = GroupFactory('pseudo.family')

PROTOCOLS = ProtocolFile('qe.yaml')

PH_DEFAULT_ALPHA_MIX = 0.7
PH_MIN_ALPHA_MIX = 0.1

KILLED_RERUNS = 1
"""Reruns of a job killed by a signal; the next kill is recorded as the failure."""

CUT_SHORT_EXIT_CODES = (
    'ERROR_OUTPUT_STDOUT_MISSING',
    'ERROR_OUTPUT_STDOUT_INCOMPLETE',
    'ERROR_OUTPUT_XML_MISSING',
    'ERROR_OUTPUT_XML_READ',
    'ERROR_OUTPUT_XML_PARSE',
    'ERROR_OUTPUT_FILES',
)
"""Exit codes of a pw.x/ph.x run whose output was cut short: what a job killed mid-run ends with (with evidence)."""

SCHEDULER_KILL_EXIT_CODES = ('ERROR_SCHEDULER_OUT_OF_MEMORY', 'ERROR_SCHEDULER_NODE_FAILURE')
"""The scheduler's own verdict that the job was killed from outside (SLURM with accounting): evidence enough."""

_OUT_OF_MEMORY = re.compile(r'oom[-_ ]kill|tasks? [\d,-]+: Out Of Memory', re.IGNORECASE)  # slurmstepd, srun
_SIGNAL_NUMBER = (
    re.compile(r'exited on signal (\d+)'),  # Open MPI's mpirun
    re.compile(r'KILLED BY SIGNAL: (\d+)'),  # MPICH, Intel MPI (hydra)
)
_KILLED_BY_NAME = (
    re.compile(r'^srun: error: .*: tasks? [\d,-]+: Killed$', re.MULTILINE),  # srun: a task died of SIGKILL
    re.compile(r'line \d+: +\d+ Killed'),  # the job script's bash, for a code run without an MPI launcher
)


def next_dfpt_mixing(inputph: dict) -> tuple[dict, str] | None:
    """The INPUTPH of a retry after ph.x did not converge (halved ``alpha_mix(1)``), or None when out of options.

    ``nmix_ph`` is left alone: ph.x 6.x refuses values above 5 ("Wrong nmix_ph"), which is what
    aiida-quantumespresso's own handler sets, so that handler turns a convergence problem into a crash there.
    """
    alpha = float(inputph.get('alpha_mix(1)', PH_DEFAULT_ALPHA_MIX))
    if alpha <= PH_MIN_ALPHA_MIX + 1e-9:
        return None
    new_alpha = max(PH_MIN_ALPHA_MIX, round(alpha / 2, 4))
    return {**inputph, 'alpha_mix(1)': new_alpha}, f'reduced alpha_mix(1) from {alpha} to {new_alpha}'


def kill_signal_in(stderr: str) -> str | None:
    """What killed a job according to its scheduler stderr (the MPI launcher's or the shell's words), or None.

    Only SIGKILL and the out-of-memory killer count: the OOM killer, a node taken down and ``kill -9`` send it,
    and none of them says anything about the calculation, so a rerun can succeed. A crash (SIGSEGV, SIGABRT,
    QE's own ``MPI_Abort``) would crash again, and SIGTERM (walltime, ``scancel``) was someone's decision.
    """
    if _OUT_OF_MEMORY.search(stderr):
        return 'the out-of-memory killer (SIGKILL)'
    for pattern in _SIGNAL_NUMBER:
        if any(int(number) == 9 for number in pattern.findall(stderr)):
            return 'signal 9 (SIGKILL)'
    if any(pattern.search(stderr) for pattern in _KILLED_BY_NAME):
        return 'signal 9 (SIGKILL)'
    return None


def kill_evidence(node: orm.CalcJobNode) -> str | None:
    """Why ``node`` looks killed from outside: the scheduler's verdict, or a kill named in its stderr; else None."""
    if node.exit_status in statuses(node.process_class, *SCHEDULER_KILL_EXIT_CODES):
        return f'the scheduler ({node.exit_message})'
    return kill_signal_in(node.get_scheduler_stderr() or '')


def killed_job_exit_codes(calculation_class) -> list:
    """The exit codes of ``calculation_class`` a killed job ends with: output cut short, or the scheduler's verdict."""
    names = (*CUT_SHORT_EXIT_CODES, *SCHEDULER_KILL_EXIT_CODES)
    return [calculation_class.exit_codes[name] for name in names if name in calculation_class.exit_codes]


class KilledJobRerunMixin:
    """For a ``BaseRestartWorkChain`` of a DFT code: rerun a job killed by a signal once, fail on the next kill.

    Without it a killed pw.x/ph.x ends its structure at once: its output is cut short (``ERROR_OUTPUT_FILES``,
    ``ERROR_OUTPUT_STDOUT_INCOMPLETE``), no stock handler claims those exit codes, and ``BaseRestartWorkChain``
    aborts on an unhandled failure. Output cut short is not enough to rerun: the kill must be named by the
    scheduler or in the job's stderr (:func:`kill_evidence`), so a code that crashes is not rerun blindly.

    The rerun is the killed job again, with its inputs unchanged: they point at the last good state (the SCF's
    ground state, or the last run that was not killed, as the stock handlers left it). pw.x and ph.x copy their
    parent folder (aiida-quantumespresso's default), so that state is intact and nothing the killed job wrote
    is read back.
    """

    KILLED_EXIT_STATUS = 390

    @classmethod
    def define_killed_exit_code(cls, spec, program: str) -> None:
        """The exit code of a workchain whose job was killed on its run and again on its rerun."""
        spec.exit_code(
            cls.KILLED_EXIT_STATUS,
            'ERROR_KILLED_BY_SIGNAL',
            message=f'{program} was killed from outside (out of memory? a failing node?) twice: {{detail}}',
        )

    def rerun_killed(self, node) -> ProcessHandlerReport | None:
        """Rerun ``node`` if it was killed and has not been rerun yet; None when there is no sign of a kill."""
        evidence = kill_evidence(node)
        if evidence is None:
            return None
        self.ctx.killed_jobs = [*self.ctx.get('killed_jobs', []), f'{node.process_label}<{node.pk}> by {evidence}']
        self.ctx.last_killed = node.pk
        if len(self.ctx.killed_jobs) > KILLED_RERUNS:
            self.report_error_handled(node, f'killed by {evidence} again: giving up')
            return ProcessHandlerReport(True, self._killed_twice())
        self.report_error_handled(node, f'killed by {evidence}, not by a problem of its own: rerunning it once')
        return ProcessHandlerReport(True)

    def inspect_process(self):
        """As the base class's, except that a workchain whose rerun was killed too ends with ``ERROR_KILLED_BY_SIGNAL``.

        The base class checks ``max_iterations`` before a handler's exit code, so a second kill on the last
        allowed iteration would end as ``ERROR_MAXIMUM_ITERATIONS_EXCEEDED``, which hides what happened.
        """
        exit_code = super().inspect_process()
        node = self.ctx.children[self.ctx.iteration - 1]
        killed_again = len(self.ctx.get('killed_jobs', [])) > KILLED_RERUNS and node.pk == self.ctx.last_killed
        if exit_code is not None and exit_code.status and killed_again:
            return self._killed_twice()
        return exit_code

    def _killed_twice(self):
        """``ERROR_KILLED_BY_SIGNAL`` naming each killed job and what killed it, for the structure's message."""
        return self.exit_codes.ERROR_KILLED_BY_SIGNAL.format(detail=', then '.join(self.ctx.killed_jobs))


class ScfWorkChain(KilledJobRerunMixin, PwBaseWorkChain):
    """``PwBaseWorkChain`` that reruns a pw.x killed by a signal once (:class:`KilledJobRerunMixin`), and with
    ``stop_unconverged`` does not restart an SCF that did not converge.

    The second is for the fixed-occupation SCF before DFPT: a metal's charge sloshes and never converges with
    fixed occupations, so restarting it with less mixing cost a metallic frame two full SCF runs (measured
    on bcc Li: 73 s and 102 s on 2 cores) before the smeared relabel that decides. The caller relabels with
    smearing at once, and the smeared bands tell a metal from an insulator whose fixed SCF failed.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            'stop_unconverged',
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help='Do not restart an SCF that did not converge (fixed occupations: the caller relabels with smearing).',
        )
        cls.define_killed_exit_code(spec, 'pw.x')
        spec.exit_code(
            391,
            'ERROR_NOT_CONVERGED_NOT_RESTARTED',
            message='the SCF did not converge and `stop_unconverged` is set: not restarted ({detail})',
        )

    @process_handler(priority=610, exit_codes=[PwCalculation.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED])
    def handle_unconverged_without_restart(self, node):
        """With ``stop_unconverged``: stop instead of restarting with less mixing (see the class docstring)."""
        if not self.inputs.stop_unconverged.value:
            return None
        self.report_error_handled(node, 'not converged with fixed occupations: not restarted (a metal?)')
        detail = f'{node.process_label}<{node.pk}> [{node.exit_status}]'
        return ProcessHandlerReport(True, self.exit_codes.ERROR_NOT_CONVERGED_NOT_RESTARTED.format(detail=detail))

    @process_handler(priority=620, exit_codes=killed_job_exit_codes(PwCalculation))
    def handle_killed_by_signal(self, node):
        """pw.x killed from outside (OOM killer, node failure, ``kill -9``): rerun once, then give up."""
        return self.rerun_killed(node)


class DfptWorkChain(KilledJobRerunMixin, PhBaseWorkChain):
    """``PhBaseWorkChain`` that reruns a ph.x killed by a signal once and recovers from non-convergence on ph.x 6.x.

    See :class:`KilledJobRerunMixin` and :func:`next_dfpt_mixing`.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        cls.define_killed_exit_code(spec, 'ph.x')

    @process_handler(priority=620, exit_codes=killed_job_exit_codes(PhCalculation))
    def handle_killed_by_signal(self, node):
        """ph.x killed from outside (OOM killer, node failure, ``kill -9``): rerun once, then give up."""
        return self.rerun_killed(node)

    def create_merged_output(self):
        """Nothing to merge at a single q-point: the last run holds every result (a rerun after a kill is whole).

        The stock merge counts the q-points done by their phonon irreps, which ph.x with ``trans=.false.`` never
        prints, so after any second run it failed with ``ERROR_MERGING_QPOINTS`` even when the last run had Z*.
        """
        last = self.ctx.children[self.ctx.iteration - 1]
        if 'output_parameters' in last.outputs and last.outputs.output_parameters.get('number_of_qpoints') == 1:
            return None
        return super().create_merged_output()

    @process_handler(priority=410, exit_codes=PhCalculation.exit_codes.ERROR_CONVERGENCE_NOT_REACHED)
    def handle_convergence_not_reached(self, node):
        """DFPT self-consistency not reached: recover from the last run with gentler mixing, or give up."""
        retry = next_dfpt_mixing(self.ctx.inputs.parameters.get('INPUTPH', {}))
        if retry is None:
            self.report_error_handled(node, f'alpha_mix(1) already at {PH_MIN_ALPHA_MIX}: giving up')
            return ProcessHandlerReport(True, self.exit_codes.ERROR_UNRECOVERABLE_FAILURE)
        self.ctx.inputs.parameters['INPUTPH'], action = retry
        self.ctx.restart_calc = node
        self.report_error_handled(node, f'{action} and recovering')
        return ProcessHandlerReport(True)


@calcfunction
def qe_frame(
    structure: orm.StructureData,
    scf_parameters: orm.Dict,
    scf_trajectory: orm.TrajectoryData,
    dfpt_parameters: orm.Dict | None = None,
    tot_charge: orm.Float | None = None,
) -> orm.ArrayData:
    """The frame of ``structure`` from pw.x (and ph.x) outputs, in the project's units and Z* convention;
    ``tot_charge``, the net charge of a cell labelled on a compensating background, is kept on the frame."""
    natoms = len(structure.sites)
    labels = {
        'energy': scf_parameters['energy'],
        'forces': scf_trajectory.get_array('forces')[-1],
        'stress': qe_labels.stress_from_qe(scf_trajectory.get_array('stress')[-1]),
    }
    if dfpt_parameters is not None:
        labels['born_charges'] = qe_labels.born_charges_from_ph(dfpt_parameters['effective_charges_eu'], natoms)
        labels['eps_inf'] = qe_labels.dielectric_from_ph(dfpt_parameters['dielectric_constant'])
    node = frame_node(natoms, scf_parameters.creator.uuid, **labels)
    if tot_charge is not None:
        node.base.attributes.set(keys.TOT_CHARGE_FLAG, tot_charge.value)
    return node


class QeFrameWorkChain(ProtocolMixin, WorkChain):
    """Label one structure with Quantum ESPRESSO: SCF energy, forces, stress; DFPT Born charges and eps_inf."""

    protocol_file = PROTOCOLS

    @classmethod
    def define(cls, spec):
        super().define(spec)
        define_frame_spec(
            spec,
            bec_help='Also compute Born effective charges and eps_inf with ph.x (DFPT, electric-field perturbation).',
        )
        spec.exit_code(
            323,
            'ERROR_SCF_KILLED',
            message='The SCF was killed by a signal twice: {detail}. Nothing was labelled.',
        )
        spec.input('pw_code', valid_type=orm.AbstractCode, help='The `quantumespresso.pw` code.')
        spec.input(
            'ph_code', valid_type=orm.AbstractCode, required=False, help='The `quantumespresso.ph` code (for `bec`).'
        )
        spec.input(
            'pseudo_family', valid_type=orm.Str, help='Label of an aiida-pseudo family with cutoffs (UPF pseudos).'
        )
        spec.input(
            'kpoints_distance',
            valid_type=orm.Float,
            help='Largest spacing of the k-point mesh in 1/Å (2π included); chosen for Z*, see the protocol file.',
        )
        spec.input(
            'pw_parameters',
            valid_type=orm.Dict,
            help='pw.x namelists; cutoffs, occupations, nbnd and conv_thr are added per structure.',
        )
        spec.input('ph_parameters', valid_type=orm.Dict, required=False, help='ph.x INPUTPH (epsil, trans=.false.).')
        spec.input(
            'cutoffs',
            valid_type=orm.List,
            required=False,
            help='[ecutwfc, ecutrho] in Ry; default: the pseudo family recommendation for the structure.',
        )
        spec.input('conv_thr_per_atom', valid_type=orm.Float, help='SCF threshold in Ry per atom.')
        spec.input('smearing', valid_type=orm.Dict, help='SYSTEM keys of a smeared SCF (metals, or without `bec`).')
        spec.input('min_gap', valid_type=orm.Float, help='Gap in eV below which Born charges are not computed.')
        spec.input('empty_bands', valid_type=orm.Int, help='Empty bands above the occupied ones to measure the gap.')
        spec.input('pw_options', valid_type=orm.Dict, help='`metadata.options` of the pw.x calculations.')
        spec.input('ph_options', valid_type=orm.Dict, required=False, help='`metadata.options` of ph.x.')
        spec.input(
            'oxidation_states',
            valid_type=orm.Dict,
            required=False,
            help='Formal oxidation state per element: a cell whose formal charges do not sum to zero (a charged '
            'vacancy) is labelled with that net charge on a compensating background (SYSTEM tot_charge), recorded '
            'on its frame as the flag `tot_charge=<q>`. Absent: every cell is neutral.',
        )
        spec.input('max_iterations', valid_type=orm.Int, default=lambda: orm.Int(5), help='Restarts per code.')
        spec.input('clean_workdir', valid_type=orm.Bool, default=lambda: orm.Bool(False), help='Clean remote folders.')
        spec.outline(
            cls.setup,
            cls.validate_elements,
            cls.run_scf,
            cls.inspect_scf,
            if_(cls.should_rerun_smeared)(cls.run_scf, cls.inspect_scf),
            if_(cls.should_run_dfpt)(cls.run_dfpt, cls.inspect_dfpt),
            cls.results,
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        pw_code,
        structure: orm.StructureData | None = None,
        ph_code=None,
        protocol: str | None = None,
        bec: bool = True,
        overrides: dict | None = None,
        options: dict | None = None,
    ):
        """A builder with every input set from ``protocol`` (``fast``, ``balanced``, ``precise``) and ``overrides``.

        ``options`` is merged into the ``metadata.options`` of both codes (e.g. resources, queue).
        """
        builder = cls.get_builder()
        for name, value in cls.get_inputs_from_protocol(pw_code, ph_code, protocol, bec, overrides, options).items():
            builder[name] = value
        if structure is not None:
            builder.structure = structure
        return builder

    @classmethod
    def get_inputs_from_protocol(cls, pw_code, ph_code=None, protocol=None, bec=True, overrides=None, options=None):
        """The structure-independent inputs as a dict of nodes (used by ``LabelWorkChain`` for its ``qe`` namespace)."""
        from aiida_quantumespresso.workflows.protocols.utils import recursive_merge

        values = cls.get_protocol_inputs(protocol, overrides)
        pw_code = orm.load_code(pw_code) if isinstance(pw_code, str) else pw_code
        inputs = {
            'bec': orm.Bool(bec),
            'pw_code': pw_code,
            'pseudo_family': orm.Str(values['pseudo_family']),
            'kpoints_distance': orm.Float(values['kpoints_distance']),
            'pw_parameters': orm.Dict(values['pw']['parameters']),
            'conv_thr_per_atom': orm.Float(values['conv_thr_per_atom']),
            'smearing': orm.Dict(values['smearing']),
            'min_gap': orm.Float(values['min_gap']),
            'empty_bands': orm.Int(values['empty_bands']),
            'pw_options': orm.Dict(recursive_merge(values['pw']['metadata']['options'], options or {})),
            'max_iterations': orm.Int(values['max_iterations']),
            'clean_workdir': orm.Bool(values['clean_workdir']),
        }
        if values['oxidation_states']:
            inputs['oxidation_states'] = orm.Dict({key: float(v) for key, v in values['oxidation_states'].items()})
        if (values['ecutwfc'] is None) != (values['ecutrho'] is None):
            raise ValueError('give both `ecutwfc` and `ecutrho` or neither (then the family recommendation is used)')
        if values['ecutwfc'] is not None:
            inputs['cutoffs'] = orm.List([float(values['ecutwfc']), float(values['ecutrho'])])
        if bec:
            if ph_code is None:
                raise ValueError('Born charges (`bec=True`) need a `quantumespresso.ph` code')
            inputs['ph_code'] = orm.load_code(ph_code) if isinstance(ph_code, str) else ph_code
            inputs['ph_parameters'] = orm.Dict(values['ph']['parameters'])
            inputs['ph_options'] = orm.Dict(recursive_merge(values['ph']['metadata']['options'], options or {}))
        return inputs

    # --- steps ----------------------------------------------------------------------------------------

    def setup(self):
        structure = self.inputs.structure
        self.ctx.natoms = len(structure.sites)
        self.ctx.metal = False
        self.ctx.gap = None
        self.ctx.scf = None
        self.ctx.rerun_smeared = False

    def validate_elements(self):
        """Every element needs a pseudopotential in the family (exit 320 otherwise); derive cutoffs and bands."""
        label = self.inputs.pseudo_family.value
        try:
            family = orm.QueryBuilder().append(PseudoPotentialFamily, filters={'label': label}).one()[0]
        except Exception:  # NotExistent or MultipleObjectsError
            return self.exit_codes.ERROR_UNSUPPORTED_ELEMENT.format(
                elements='every element', detail=f'pseudo family `{label}` is not installed (`ionfield setup`)'
            )
        structure = self.inputs.structure
        missing = sorted(set(structure.get_symbols_set()) - set(family.elements))
        if missing:
            return self.exit_codes.ERROR_UNSUPPORTED_ELEMENT.format(
                elements=', '.join(missing), detail=f'family `{label}` covers {", ".join(sorted(family.elements))}'
            )
        self.ctx.pseudos = family.get_pseudos(structure=structure)
        if 'cutoffs' in self.inputs:
            self.ctx.cutoffs = list(self.inputs.cutoffs.get_list())
        else:
            self.ctx.cutoffs = list(family.get_recommended_cutoffs(structure=structure, unit='Ry'))
        valence = {kind.name: self.ctx.pseudos[kind.name].z_valence for kind in structure.kinds}
        self.ctx.tot_charge = None
        if 'oxidation_states' in self.inputs:
            states = self.inputs.oxidation_states.get_dict()
            unknown = sorted(set(structure.get_symbols_set()) - set(states))
            if unknown:
                return self.exit_codes.ERROR_UNSUPPORTED_ELEMENT.format(
                    elements=', '.join(unknown), detail='`oxidation_states` gives them no formal oxidation state'
                )
            self.ctx.tot_charge = formal_charge(structure.get_ase(), states)
            if self.ctx.tot_charge:
                self.report(f'formal charge {self.ctx.tot_charge:+g} e: labelled on a compensating background')
        nelec = sum(valence[site.kind_name] for site in structure.sites) - (self.ctx.tot_charge or 0.0)
        self.ctx.nelec = nelec
        even = abs(nelec / 2 - round(nelec / 2)) < 1e-6
        self.ctx.odd_electrons = not even
        if self.inputs.bec.value and not even:
            self.report(f'{nelec:g} valence electrons: odd, so no gap; Born charges are skipped (smeared SCF)')
            self.ctx.metal = True
        return None

    def _scf_inputs(self) -> AttributeDict:
        structure = self.inputs.structure
        parameters = self.inputs.pw_parameters.get_dict()
        system = parameters.setdefault('SYSTEM', {})
        system['ecutwfc'], system['ecutrho'] = self.ctx.cutoffs
        if self.ctx.tot_charge:
            system['tot_charge'] = self.ctx.tot_charge
        parameters.setdefault('ELECTRONS', {})['conv_thr'] = self.inputs.conv_thr_per_atom.value * self.ctx.natoms
        fixed = self.inputs.bec.value and not self.ctx.metal
        if self.inputs.bec.value:  # empty bands to measure the gap, smeared or not
            system['nbnd'] = int(math.ceil(self.ctx.nelec / 2)) + self.inputs.empty_bands.value
        if fixed:
            system['occupations'] = 'fixed'
        else:
            system.update(self.inputs.smearing.get_dict())
        inputs = AttributeDict(
            {
                'pw': {
                    'code': self.inputs.pw_code,
                    'structure': structure,
                    'pseudos': self.ctx.pseudos,
                    'parameters': orm.Dict(parameters),
                    'metadata': {'options': self.inputs.pw_options.get_dict()},
                },
                'kpoints_distance': self.inputs.kpoints_distance,
                # a metal never converges with fixed occupations: no restart for that (stop_unconverged), one
                # rerun of a killed pw.x, then the smeared relabel
                'max_iterations': orm.Int(min(2, self.inputs.max_iterations.value))
                if fixed
                else self.inputs.max_iterations,
                'stop_unconverged': orm.Bool(fixed),
                'clean_workdir': orm.Bool(False),  # ph.x reads this SCF's folder; cleaned at the end if asked
                'metadata': {'call_link_label': 'scf_fixed' if fixed else 'scf_smeared'},
            }
        )
        return inputs

    def run_scf(self):
        node = self.submit(ScfWorkChain, **self._scf_inputs())
        self.ctx.fixed_occupations = self.inputs.bec.value and not self.ctx.metal
        self.report(f'launched ScfWorkChain<{node.pk}> ({"fixed" if self.ctx.fixed_occupations else "smeared"})')
        return ToContext(scf=node)

    def inspect_scf(self):
        """Check the SCF; with ``bec``, measure the gap and decide between DFPT and a smeared relabel.

        A fixed-occupation SCF that fails (a metal's charge sloshes) is retried once with smearing; its
        bands then tell a metal (exit 330) from an insulator whose fixed SCF failed (331, E/F/S kept). A pw.x
        killed twice says nothing about the occupations: that structure fails at once (``ERROR_SCF_KILLED``).
        """
        node = self.ctx.scf
        self.ctx.rerun_smeared = False
        detail = f'{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}'
        if node.exit_status in statuses(ScfWorkChain, 'ERROR_KILLED_BY_SIGNAL'):
            return self.exit_codes.ERROR_SCF_KILLED.format(detail=detail)
        if not node.is_finished_ok:
            if self.ctx.fixed_occupations:
                self.report(f'fixed-occupation SCF failed ({detail}): a metal? relabelling with smearing')
                self.ctx.fixed_scf_error = detail
                self.ctx.metal = self.ctx.rerun_smeared = True
                return None
            return self.exit_codes.ERROR_SCF_FAILED.format(detail=detail)
        for name in ('output_parameters', 'output_trajectory', 'remote_folder'):
            if name not in node.outputs:
                detail = f'`{name}` ({node.process_label}<{node.pk}>)'
                return self.exit_codes.ERROR_SCF_INCOMPLETE_OUTPUT.format(detail=detail)
        trajectory = node.outputs.output_trajectory
        if not {'stress', 'forces'} <= set(trajectory.get_arraynames()):
            detail = f'forces and stress ({node.process_label}<{node.pk}>)'
            return self.exit_codes.ERROR_SCF_INCOMPLETE_OUTPUT.format(detail=detail)
        if not self.inputs.bec.value or self.ctx.odd_electrons:
            return None
        n_occupied = int(round(self.ctx.nelec / 2))
        self.ctx.gap = qe_labels.band_gap(node.outputs.output_band.get_bands(), n_occupied)
        kind = 'fixed' if self.ctx.fixed_occupations else 'smeared'
        self.report(f'band gap {self.ctx.gap:.3f} eV ({kind} SCF, {n_occupied} occupied bands)')
        if self.ctx.fixed_occupations and self.ctx.gap < self.inputs.min_gap.value:
            self.report(f'gap below min_gap = {self.inputs.min_gap.value} eV: metal, relabelling with smearing')
            self.ctx.metal = self.ctx.rerun_smeared = True
        return None

    def should_rerun_smeared(self):
        return self.ctx.rerun_smeared

    def should_run_dfpt(self):
        return self.inputs.bec.value and not self.ctx.metal

    def run_dfpt(self):
        if 'ph_code' not in self.inputs:
            return self.exit_codes.ERROR_DFPT_FAILED.format(detail='no `ph_code` was given')
        qpoints = orm.KpointsData()
        qpoints.set_cell_from_structure(self.inputs.structure)
        qpoints.set_kpoints([[0.0, 0.0, 0.0]])
        parameters = self.inputs.ph_parameters.get_dict() if 'ph_parameters' in self.inputs else {}
        parameters.setdefault('INPUTPH', {}).update({'epsil': True, 'trans': False})
        options = (
            self.inputs.ph_options.get_dict() if 'ph_options' in self.inputs else self.inputs.pw_options.get_dict()
        )
        inputs = {
            'ph': {
                'code': self.inputs.ph_code,
                'parent_folder': self.ctx.scf.outputs.remote_folder,
                'parameters': orm.Dict(parameters),
                'metadata': {'options': options},
            },
            'qpoints': qpoints,
            'max_iterations': self.inputs.max_iterations,
            'metadata': {'call_link_label': 'dfpt'},
        }
        node = self.submit(DfptWorkChain, **inputs)
        self.report(f'launched DfptWorkChain<{node.pk}> (epsil, Gamma)')
        return ToContext(dfpt=node)

    def inspect_dfpt(self):
        node = self.ctx.dfpt
        detail = None
        if not node.is_finished_ok:
            detail = f'{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message}'
        elif not all(
            key in node.outputs.output_parameters.keys() for key in ('effective_charges_eu', 'dielectric_constant')
        ):
            detail = f'{node.process_label}<{node.pk}> produced no effective charges / dielectric tensor'
        self.ctx.dfpt_error = detail
        return None

    def results(self):
        scf = self.ctx.scf
        inputs = {
            'structure': self.inputs.structure,
            'scf_parameters': scf.outputs.output_parameters,
            'scf_trajectory': scf.outputs.output_trajectory,
            'metadata': {'call_link_label': 'frame'},
        }
        dfpt_error = self.ctx.get('dfpt_error')
        if self.should_run_dfpt() and dfpt_error is None:
            inputs['dfpt_parameters'] = self.ctx.dfpt.outputs.output_parameters
        if self.ctx.tot_charge is not None:
            inputs['tot_charge'] = orm.Float(self.ctx.tot_charge)
        self.out('frame', qe_frame(**inputs))
        if self.inputs.clean_workdir.value:
            self._clean_workdirs()
        fixed_scf_error = self.ctx.get('fixed_scf_error')
        if fixed_scf_error and self.ctx.gap is not None and self.ctx.gap >= self.inputs.min_gap.value:
            detail = f'the fixed-occupation SCF failed ({fixed_scf_error}) although the gap is {self.ctx.gap:.3f} eV'
            return self.exit_codes.ERROR_DFPT_FAILED.format(detail=detail)
        if self.ctx.metal and self.inputs.bec.value:
            detail = f'gap {self.ctx.gap:.3f} eV' if self.ctx.gap is not None else f'{self.ctx.nelec:g} electrons'
            return self.exit_codes.ERROR_NO_GAP.format(detail=detail)
        if dfpt_error is not None:
            return self.exit_codes.ERROR_DFPT_FAILED.format(detail=dfpt_error)
        return None

    def _clean_workdirs(self):
        cleaned = []
        for node in self.node.called_descendants:
            if isinstance(node, orm.CalcJobNode):
                try:
                    node.outputs.remote_folder._clean()
                    cleaned.append(str(node.pk))
                except (OSError, KeyError, AttributeError):
                    pass
        if cleaned:
            self.report(f'cleaned remote folders of calculations: {" ".join(cleaned)}')
