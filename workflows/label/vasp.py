"""``VaspFrameWorkChain`` (``ionfield.label.vasp``): one structure labelled by VASP (E, F, S; Z*, eps_inf).

Two aiida-vasp ``VaspWorkChain`` runs on the same structure and k-point mesh, so aiida-vasp's restart handlers
apply to both: an SCF single point (IBRION=-1, NSW=0, ISIF=2: energy, forces, stress) and, with ``bec``, a
linear-response run (LEPSILON=.TRUE., LRPA=.FALSE.) for the Born charges and the clamped-ion dielectric
tensor. The conversions to the project's units and Born-charge convention, and the evidence for them, are in
:mod:`ionfield.models.labels.vasp`.

Born charges need an insulator: with ``bec`` the SCF's band occupations are checked first, and a structure
with partly occupied states or a gap below ``min_gap`` gets no LEPSILON run; its frame carries E, F, S and the
workchain exits with ``ERROR_NO_GAP``. A failed LEPSILON run likewise keeps the SCF labels (``ERROR_DFPT_FAILED``).

Every input except ``structure`` is the same for a whole batch of structures (EDIFF is derived per structure
from ``*_ediff_per_atom``, and the POTCAR mapping may be keyed by element as well as by kind name), which is
what lets ``LabelWorkChain`` expose them once.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, calcfunction, if_
from aiida.plugins import DataFactory, GroupFactory, WorkflowFactory
from aiida_quantumespresso.calculations.functions.create_kpoints_from_distance import create_kpoints_from_distance

from ionfield.models.labels import vasp as vasp_labels
from ionfield.workflows.protocols import ProtocolMixin

from .frame import define_frame_spec, frame_node
from .protocols import ProtocolFile, recursive_merge

__all__ = ('VaspFrameWorkChain', 'vasp_frame')

VaspWorkChain = WorkflowFactory('vasp.vasp')
PotcarData = DataFactory('vasp.potcar')
PotcarGroup = GroupFactory('vasp.potcar')

PROTOCOLS = ProtocolFile('vasp.yaml')

SCF_FIXED = {'ibrion': -1, 'nsw': 0}
"""INCAR values of the SCF, a single point with ions fixed: replaced when set otherwise (VASP's defaults when unset;
ISIF, which must be >= 2 for the full stress tensor, is checked separately)."""

DFPT_REQUIRED = {'lepsilon': True}
"""INCAR tags every LEPSILON run gets."""

DFPT_FIXED = {'lrpa': False, 'ibrion': -1, 'nsw': 0}
"""INCAR values of the LEPSILON run (local-field effects in DFT, ions fixed): replaced when set otherwise."""

EXCLUDED = ('structure', 'kpoints', 'kpoints_spacing')
"""``VaspWorkChain`` inputs set by this workchain (per structure), not exposed."""


@calcfunction
def vasp_frame(
    structure: orm.StructureData,
    scf_misc: orm.Dict,
    dfpt_born_charges: orm.ArrayData | None = None,
    dfpt_dielectrics: orm.ArrayData | None = None,
    dfpt_retrieved: orm.FolderData | None = None,
) -> orm.ArrayData:
    """The frame of ``structure`` from VASP outputs (as parsed by aiida-vasp) in the project's units and Z* convention.

    E, F, S come from the SCF's ``misc``; Z* and eps_inf from the LEPSILON run's ``born_charges`` and
    ``dielectrics``, with the raw (sum rule not imposed) Z* restored from its OUTCAR when it is retrieved
    (attribute ``born_charges_source``: ``outcar-raw`` or ``vasprun-asr``).
    """
    natoms = len(structure.sites)
    labels = {
        'energy': vasp_labels.energy_from_vasp(scf_misc['total_energies']),
        'forces': vasp_labels.forces_from_vasp(scf_misc['forces'], natoms),
        'stress': vasp_labels.stress_from_vasp(scf_misc['stress']),
    }
    source = None
    if dfpt_born_charges is not None:
        outcar = None
        if dfpt_retrieved is not None and 'OUTCAR' in dfpt_retrieved.base.repository.list_object_names():
            outcar = dfpt_retrieved.base.repository.get_object_content('OUTCAR', mode='r')
        born = dfpt_born_charges.get_array('born_charges')
        labels['born_charges'], source = vasp_labels.born_charges_from_vasp(born, natoms, outcar)
    if dfpt_dielectrics is not None:
        arrays = {name: dfpt_dielectrics.get_array(name) for name in dfpt_dielectrics.get_arraynames()}
        labels['eps_inf'] = vasp_labels.eps_inf_from_vasp(arrays)
    node = frame_node(natoms, scf_misc.creator.uuid, **labels)
    if source is not None:
        node.base.attributes.set('born_charges_source', source)
    return node


def validate_inputs(inputs, ctx):
    """Born charges need the ``dfpt`` inputs; a PSTRESS would turn the SCF energy into an enthalpy."""
    if 'bec' in ctx and 'dfpt' in ctx:
        bec = inputs.get('bec')
        if (bec is None or bec.value) and not inputs.get('dfpt'):
            return 'Born charges (`bec` True) need the `dfpt` inputs (code, POTCARs, LEPSILON parameters).'
    if 'scf' in ctx and inputs.get('scf', {}).get('parameters') is not None:
        incar = {key.lower(): value for key, value in inputs['scf']['parameters'].get_dict().get('incar', {}).items()}
        if incar.get('pstress'):
            return 'PSTRESS must not be set for labels: VASP would add P*V to the energy and shift the stress.'
    return None


class VaspFrameWorkChain(ProtocolMixin, WorkChain):
    """Label one structure with VASP: SCF energy, forces, stress; LEPSILON Born charges and eps_inf."""

    protocol_file = PROTOCOLS

    @classmethod
    def define(cls, spec):
        super().define(spec)
        define_frame_spec(
            spec,
            bec_help='Also compute Born effective charges and eps_inf with a LEPSILON run (needs the `dfpt` inputs).',
        )
        spec.input(
            'kpoints_distance',
            valid_type=orm.Float,
            help='Largest spacing of the Gamma-centred k-point mesh in 1/Å (2π included), shared by the SCF and '
            'the LEPSILON run; chosen for Z*, see the protocol file.',
        )
        spec.input(
            'scf_ediff_per_atom',
            valid_type=orm.Float,
            required=False,
            help='SCF EDIFF in eV per atom, multiplied by the number of atoms unless `scf.parameters` sets `ediff`.',
        )
        spec.input(
            'dfpt_ediff_per_atom',
            valid_type=orm.Float,
            required=False,
            help='LEPSILON EDIFF in eV per atom, multiplied by the number of atoms unless `dfpt.parameters` sets it.',
        )
        spec.input(
            'min_gap',
            valid_type=orm.Float,
            default=lambda: orm.Float(0.1),
            help='Band gap in eV below which (or with partly occupied states) the structure counts as a metal and '
            'gets no Born charges.',
        )
        spec.expose_inputs(
            VaspWorkChain,
            namespace='scf',
            exclude=EXCLUDED,
            namespace_options={
                'help': 'Inputs of the SCF `VaspWorkChain` (code, potential_family, potential_mapping keyed by kind '
                'name or element, parameters.incar, calc.metadata.options, settings, ...); IBRION=-1, NSW=0 and '
                'ISIF>=2 are enforced.'
            },
        )
        spec.expose_inputs(
            VaspWorkChain,
            namespace='dfpt',
            exclude=EXCLUDED,
            namespace_options={
                'required': False,
                'populate_defaults': False,
                'help': 'Inputs of the LEPSILON `VaspWorkChain` (needed when `bec`); LEPSILON=.TRUE., LRPA=.FALSE., '
                'IBRION=-1 and NSW=0 are enforced.',
            },
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            cls.validate_potentials,
            cls.run_scf,
            cls.inspect_scf,
            if_(cls.should_run_dfpt)(cls.run_dfpt, cls.inspect_dfpt),
            cls.results,
        )

    # --- protocols ------------------------------------------------------------------------------------

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        structure: orm.StructureData | None = None,
        protocol: str | None = None,
        bec: bool = True,
        overrides: dict | None = None,
        potential_family: str | None = None,
        potential_mapping: dict | None = None,
        options: dict | None = None,
    ):
        """A builder with every input set from ``protocol`` (``fast``, ``balanced``, ``precise``) and ``overrides``.

        :param code: the ``vasp.vasp`` code (node or label), used for both runs.
        :param potential_family: POTCAR family label (default: the protocol's, ``PBE.54``).
        :param potential_mapping: ``{element or kind name: POTCAR name}`` merged over aiida-vasp's recommended
            mapping (e.g. ``{'Li': 'Li_sv'}``).
        :param options: merged into the ``metadata.options`` of both runs (resources, queue, ...).
        """
        builder = cls.get_builder()
        inputs = cls.get_inputs_from_protocol(
            code, protocol, bec, overrides, potential_family, potential_mapping, options
        )
        for name, value in inputs.items():
            builder[name] = value
        if structure is not None:
            builder.structure = structure
        return builder

    @classmethod
    def get_inputs_from_protocol(
        cls,
        code,
        protocol: str | None = None,
        bec: bool = True,
        overrides: dict | None = None,
        potential_family: str | None = None,
        potential_mapping: dict | None = None,
        options: dict | None = None,
    ) -> dict:
        """The structure-independent inputs as a nested dict of nodes (for ``LabelWorkChain``'s ``vasp`` namespace)."""
        values = cls.get_protocol_inputs(protocol, overrides)
        code = orm.load_code(code) if isinstance(code, str) else code
        mapping = {
            **recommended_potential_mapping(),
            **(values['potential_mapping'] or {}),
            **(potential_mapping or {}),
        }
        family = potential_family or values['potential_family']
        inputs = {
            'bec': orm.Bool(bec),
            'kpoints_distance': orm.Float(values['kpoints_distance']),
            'min_gap': orm.Float(values['min_gap']),
        }
        for namespace in ('scf', 'dfpt') if bec else ('scf',):
            section = values[namespace]
            inputs[f'{namespace}_ediff_per_atom'] = orm.Float(section['ediff_per_atom'])
            inputs[namespace] = {
                'code': code,
                'potential_family': orm.Str(family),
                'potential_mapping': orm.Dict(mapping),
                'parameters': orm.Dict(section['parameters']),
                'calc': {'metadata': {'options': recursive_merge(section['options'], options or {})}},
                'max_iterations': orm.Int(values['max_iterations']),
                'clean_workdir': orm.Bool(values['clean_workdir']),
            }
        return inputs

    # --- steps ----------------------------------------------------------------------------------------

    def setup(self):
        self.ctx.natoms = len(self.inputs.structure.sites)
        self.ctx.metal = False
        self.ctx.gap_detail = None
        self.ctx.dfpt_error = None
        self.ctx.mappings = {}

    def _namespaces(self) -> tuple[str, ...]:
        return ('scf', 'dfpt') if self.inputs.bec.value else ('scf',)

    def validate_potentials(self):
        """Every element needs a POTCAR in the mapping and the family (exit 320 naming the elements otherwise)."""
        structure = self.inputs.structure
        missing = {}
        for namespace in self._namespaces():
            inputs = self.exposed_inputs(VaspWorkChain, namespace=namespace)
            family = inputs['potential_family'].value
            mapping = inputs['potential_mapping'].get_dict()
            available = potcar_names(family)
            per_kind = {}
            for kind in structure.kinds:
                name = mapping.get(kind.name, mapping.get(kind.symbol))
                if name is None:
                    missing.setdefault(kind.symbol, f'{kind.symbol} is not in the `{namespace}.potential_mapping`')
                elif name not in available:
                    missing.setdefault(kind.symbol, f'POTCAR `{name}` ({kind.symbol}) is not in the family `{family}`')
                else:
                    per_kind[kind.name] = name
            self.ctx.mappings[namespace] = per_kind
        if missing:
            return self.exit_codes.ERROR_UNSUPPORTED_ELEMENT.format(
                elements=', '.join(sorted(missing)), detail='; '.join(missing[symbol] for symbol in sorted(missing))
            )
        return None

    def _vasp_inputs(self, namespace: str, required: dict, fixed: dict, ediff_per_atom: str) -> AttributeDict:
        """The ``VaspWorkChain`` inputs of one run: the exposed ones plus structure, k-points and enforced tags.

        ``required`` tags are always written; ``fixed`` ones replace a different value but are not added when
        unset, since VASP's default is then the right one (so the INCAR says no more than it has to).
        """
        inputs = AttributeDict(self.exposed_inputs(VaspWorkChain, namespace=namespace))
        parameters = inputs.parameters.get_dict()
        incar = {key.lower(): value for key, value in parameters.get('incar', {}).items()}
        for key, value in {**fixed, **required}.items():
            if key in incar and incar[key] != value:
                self.report(f'{namespace}: INCAR {key.upper()} = {incar[key]} replaced by {value}')
            if key in incar or key in required:
                incar[key] = value
        if namespace == 'scf' and incar.get('isif', 2) < 2:  # 0: no stress, 1: only its trace
            self.report(f'scf: INCAR ISIF = {incar["isif"]} computes no full stress tensor, replaced by 2')
            incar['isif'] = 2
        if 'ediff' not in incar and ediff_per_atom in self.inputs:
            incar['ediff'] = self.inputs[ediff_per_atom].value * self.ctx.natoms
        inputs.parameters = orm.Dict({**parameters, 'incar': incar})
        inputs.structure = self.inputs.structure
        inputs.kpoints = self.ctx.kpoints
        if self.ctx.mappings[namespace] != inputs.potential_mapping.get_dict():
            inputs.potential_mapping = orm.Dict(self.ctx.mappings[namespace])
        inputs.metadata = {**inputs.get('metadata', {}), 'call_link_label': namespace}
        return inputs

    @staticmethod
    def _parser_settings(inputs: AttributeDict, include_nodes: tuple[str, ...]) -> orm.Dict:
        """``settings`` with the free energy and ``include_nodes`` requested from aiida-vasp's parser."""
        settings = inputs.settings.get_dict() if 'settings' in inputs else {}
        parser = settings.setdefault('parser_settings', {})
        energy_types = list(parser.get('energy_type', ['energy_extrapolated']))
        if vasp_labels.ENERGY_TYPE not in energy_types:
            energy_types.append(vasp_labels.ENERGY_TYPE)
        parser['energy_type'] = energy_types
        parser['include_node'] = sorted(set(parser.get('include_node', [])) | set(include_nodes))
        return orm.Dict(settings)

    def run_scf(self):
        self.ctx.kpoints = create_kpoints_from_distance(  # one Gamma-centred mesh for both runs
            self.inputs.structure,
            self.inputs.kpoints_distance,
            orm.Bool(False),
            metadata={'call_link_label': 'create_kpoints_from_distance'},
        )
        inputs = self._vasp_inputs('scf', {}, SCF_FIXED, 'scf_ediff_per_atom')
        inputs.settings = self._parser_settings(inputs, ('bands',) if self.inputs.bec.value else ())
        node = self.submit(VaspWorkChain, **inputs)
        self.report(f'launched SCF VaspWorkChain<{node.pk}>')
        return ToContext(scf=node)

    def inspect_scf(self):
        node = self.ctx.scf
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SCF_FAILED.format(
                detail=f'VaspWorkChain<{node.pk}> exit {node.exit_status}: {node.exit_message}'
            )
        if 'misc' not in node.outputs:
            return self.exit_codes.ERROR_SCF_INCOMPLETE_OUTPUT.format(detail=f'`misc` (VaspWorkChain<{node.pk}>)')
        misc = node.outputs.misc
        missing = [name for name in ('total_energies', 'forces', 'stress') if name not in misc.keys()]
        if missing:
            return self.exit_codes.ERROR_SCF_INCOMPLETE_OUTPUT.format(
                detail=f'{", ".join(missing)} in `misc` (VaspWorkChain<{node.pk}>)'
            )
        if vasp_labels.ENERGY_TYPE not in misc['total_energies']:
            return self.exit_codes.ERROR_SCF_INCOMPLETE_OUTPUT.format(
                detail=f'the free energy `{vasp_labels.ENERGY_TYPE}` (VaspWorkChain<{node.pk}>)'
            )
        if self.inputs.bec.value:
            self._check_gap(node)
        return None

    def _check_gap(self, node):
        """Decide from the SCF's occupations whether Born charges are defined (sets ``ctx.metal``)."""
        if 'bands' not in node.outputs:
            self.ctx.dfpt_error = 'not run: the SCF has no band occupations (`bands`) to check the gap'
            return
        eigenvalues, occupations = node.outputs.bands.get_bands(also_occupations=True)
        try:
            edges = vasp_labels.band_edges(eigenvalues, occupations)
        except ValueError as exception:
            self.ctx.dfpt_error = f'not run: the gap cannot be measured ({exception})'
            return
        min_gap = self.inputs.min_gap.value
        self.report(
            f'band gap {edges.gap:.3f} eV (VBM {edges.vbm:.3f}, CBM {edges.cbm:.3f} eV)'
            + (', partly occupied states' if edges.partial_occupations else '')
        )
        if edges.is_metal(min_gap):
            self.ctx.metal = True
            reason = 'partly occupied states' if edges.partial_occupations else f'below min_gap = {min_gap} eV'
            self.ctx.gap_detail = f'gap {edges.gap:.3f} eV, {reason}'

    def should_run_dfpt(self):
        return self.inputs.bec.value and not self.ctx.metal and self.ctx.dfpt_error is None

    def run_dfpt(self):
        inputs = self._vasp_inputs('dfpt', DFPT_REQUIRED, DFPT_FIXED, 'dfpt_ediff_per_atom')
        inputs.settings = self._parser_settings(inputs, ())
        node = self.submit(VaspWorkChain, **inputs)
        self.report(f'launched LEPSILON VaspWorkChain<{node.pk}>')
        return ToContext(dfpt=node)

    def inspect_dfpt(self):
        node = self.ctx.dfpt
        if not node.is_finished_ok:
            self.ctx.dfpt_error = f'VaspWorkChain<{node.pk}> exit {node.exit_status}: {node.exit_message}'
            return
        missing = [name for name in ('born_charges', 'dielectrics') if name not in node.outputs]
        if missing:
            self.ctx.dfpt_error = f'VaspWorkChain<{node.pk}> has no {" or ".join(missing)} output (was LEPSILON run?)'
            return
        born = node.outputs.born_charges
        if 'born_charges' not in born.get_arraynames() or born.get_shape('born_charges') != (self.ctx.natoms, 3, 3):
            self.ctx.dfpt_error = f'VaspWorkChain<{node.pk}> Born charges are not ({self.ctx.natoms}, 3, 3)'
            return
        if 'epsilon' not in node.outputs.dielectrics.get_arraynames():
            self.ctx.dfpt_error = f'VaspWorkChain<{node.pk}> has no dielectric tensor `epsilon`'

    def results(self):
        inputs = {
            'structure': self.inputs.structure,
            'scf_misc': self.ctx.scf.outputs.misc,
            'metadata': {'call_link_label': 'frame'},
        }
        dfpt = self.ctx.get('dfpt')
        if dfpt is not None and self.ctx.dfpt_error is None:
            inputs['dfpt_born_charges'] = dfpt.outputs.born_charges
            inputs['dfpt_dielectrics'] = dfpt.outputs.dielectrics
            if 'retrieved' in dfpt.outputs:
                inputs['dfpt_retrieved'] = dfpt.outputs.retrieved
        frame = vasp_frame(**inputs)
        self.out('frame', frame)
        if 'born_charges_source' in frame.base.attributes.keys():
            self.report(f'Born charges from {frame.base.attributes.get("born_charges_source")}')
        if self.ctx.metal:
            return self.exit_codes.ERROR_NO_GAP.format(detail=self.ctx.gap_detail)
        if self.inputs.bec.value and self.ctx.dfpt_error is not None:
            return self.exit_codes.ERROR_DFPT_FAILED.format(detail=self.ctx.dfpt_error)
        return None


def potcar_names(family: str) -> set[str]:
    """The POTCAR names (``full_name``, e.g. ``Li_sv``) in the POTCAR family ``family``."""
    query = orm.QueryBuilder().append(PotcarGroup, filters={'label': family}, tag='family')
    query.append(PotcarData, with_group='family', project='attributes.full_name')
    return set(query.all(flat=True))


def recommended_potential_mapping() -> dict[str, str]:
    """aiida-vasp's recommended ``{element: POTCAR name}`` (VASP's recommendations, e.g. ``Li_sv``)."""
    from importlib.resources import files  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    content = yaml.safe_load(files('aiida_vasp.protocols').joinpath('vasp.yaml').read_text())
    return dict(content['default_potential_mapping'])
