"""``ionfield label``: submit ``LabelWorkChain`` for structure files or reference names; print the pk."""

from __future__ import annotations

import click

from .cmd_check import read_structures
from .defaults import label_overrides, max_concurrent_labels, qe_code_labels
from .launch import submit_and_wait
from .root import cli
from .utils import (
    PROFILE_OPTION,
    job_metadata_options,
    job_options,
    load_profile_or_fail,
    load_runner_code,
    parse_key_values,
)


def parse_mesh(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        mesh = [int(part) for part in text.lower().split('x')]
    except ValueError:
        mesh = []
    if len(mesh) != 3 or min(mesh) < 1:
        raise click.BadParameter(f'`{text}` is not a supercell like 2x2x1', param_hint='--supercell')
    return mesh


def _sampled(function, name: str, **inputs):
    """Run a sampling calcfunction; a failure (exit code) becomes a CLI error naming the structure."""
    outputs, node = function.run_get_node(**inputs)
    if not node.is_finished_ok:
        raise click.ClickException(f'{name}: {function.__name__} failed: [{node.exit_status}] {node.exit_message}')
    return outputs


def structure_key(name: str, taken) -> str:
    """A port-name-safe key for a file name or reference name, unique among ``taken``."""
    import pathlib
    import re

    key = re.sub(r'\W+', '_', pathlib.Path(name).name).strip('_').lower() or 'structure'
    if key[0].isdigit():
        key = f's_{key}'
    while key in taken:
        key += '_'
    return key


def build_structures(sources, supercell, rattle, stdev, seed) -> dict:
    """``{key: StructureData}``: files are read and sampled by calcfunctions, so provenance shows it."""
    import pathlib

    from aiida import orm

    from ionfield.workflows.structures import functions as sampling

    structures = {}
    for name, atoms in read_structures(sources):
        if pathlib.Path(name).is_file():
            file = orm.SinglefileData(pathlib.Path(name).resolve())
            structure = _sampled(sampling.read_structure_file, name, file=file)
        else:
            structure = orm.StructureData(ase=atoms, label=name)
        if supercell is not None:
            structure = _sampled(sampling.make_supercell, name, structure=structure, matrix=orm.List(supercell))
        key = structure_key(name, structures)
        if not rattle:
            structures[key] = structure
            continue
        rattled = _sampled(
            sampling.rattle_structure,
            name,
            structure=structure,
            stdev=orm.Float(stdev),
            seed=orm.Int(seed),
            count=orm.Int(rattle),
        )
        for index, (_, copy) in enumerate(sorted(rattled.items())):
            structures[f'{key}_{index:03d}'] = copy
    return structures


@cli.command('label')
@click.argument('structures', nargs=-1, required=True, metavar='STRUCTURE...')
@click.option('--engine', type=click.Choice(['qe', 'vasp']), default='qe', show_default=True, help='DFT engine.')
@click.option('--bec/--no-bec', default=True, show_default=True, help='Also compute Born charges and eps_inf (DFPT).')
@click.option('--protocol', default=None, help='fast, balanced or precise (default: the engine file default, fast).')
@click.option(
    '--override',
    'overrides',
    multiple=True,
    metavar='KEY=VALUE',
    help='Protocol override, e.g. '
    'kpoints_distance=0.3 or pw.parameters.ELECTRONS.mixing_beta=0.2 (repeatable; VALUE is YAML).',
)
@click.option('--supercell', default=None, metavar='NxMxK', help='Label supercells of the structures.')
@click.option('--rattle', default=0, type=click.IntRange(0), help='Label this many seeded rattled copies of each.')
@click.option('--stdev', default=0.05, show_default=True, type=click.FloatRange(0), help='Rattle amplitude in Å.')
@click.option('--seed', default=0, show_default=True, type=int, help='Seed of the rattles.')
@click.option('--min-success-fraction', default=0.5, show_default=True, type=click.FloatRange(0, 1))
@click.option('--asr-threshold', default=0.05, show_default=True, type=click.FloatRange(0), help='In e.')
@click.option(
    '--max-concurrent',
    default=None,
    type=click.IntRange(0),
    help='Structures labelled at a time (0: all; default 1 on a laptop profile, else 0).',
)
@click.option(
    '--computer',
    default=None,
    help='Run pw.x/ph.x as the codes pw@COMPUTER and ph@COMPUTER (e.g. a SLURM computer made by '
    '`ionfield setup slurm`; default: the codes `ionfield setup` recorded).',
)
@click.option('--walltime', default=None, type=click.IntRange(60), help='Seconds per DFT job (default: the protocol).')
@job_options
@click.option('--code', 'vasp_code', default=None, help='VASP code label (engine vasp).')
@click.option('--potential-family', default=None, help='POTCAR family (engine vasp).')
@click.option('--potential-mapping', default=None, help='Element->POTCAR, YAML, e.g. "{Li: Li_sv, N: N}".')
@click.option('--wait', 'wait_s', default=0.0, type=float, help='Wait this many seconds for the result.')
@PROFILE_OPTION
def cmd_label(
    structures,
    engine,
    bec,
    protocol,
    overrides,
    supercell,
    rattle,
    stdev,
    seed,
    min_success_fraction,
    asr_threshold,
    max_concurrent,
    computer,
    walltime,
    partition,
    account,
    qos,
    gpus,
    vasp_code,
    potential_family,
    potential_mapping,
    wait_s,
    profile,
):
    """Label STRUCTURE files (CIF, POSCAR, extxyz) or reference names (e.g. alpha-Li3N) with DFT/DFPT."""
    import yaml
    from aiida import orm

    from ionfield.workflows.label.workchain import ENGINES, LabelWorkChain

    loaded = load_profile_or_fail(profile)
    if engine not in ENGINES:
        raise click.ClickException(f'the `{engine}` engine is not available in this installation')
    overrides = parse_key_values(overrides, '--override')
    if engine == 'qe':
        codes = qe_code_labels(loaded.name, computer)
        overrides = {**label_overrides(), **overrides}
        job_code = load_runner_code(codes['pw'], 'pw', 'quantumespresso.pw')
        engine_arguments = {'pw_code': codes['pw'], 'ph_code': codes['ph'] if bec else None}
    else:
        if computer is not None:
            raise click.UsageError('--computer picks the QE codes; with the vasp engine the --code picks the computer')
        if not (vasp_code and potential_family and potential_mapping):
            raise click.UsageError('engine vasp needs --code, --potential-family and --potential-mapping')
        engine_arguments = {
            'code': vasp_code,
            'potential_family': potential_family,
            'potential_mapping': yaml.safe_load(potential_mapping),
        }
        job_code = load_runner_code(vasp_code, 'vasp', 'vasp.vasp')
    request = {'partition': partition, 'account': account, 'qos': qos, 'gpus': gpus}
    options = job_metadata_options(job_code, walltime, **request) or None
    nodes = build_structures(structures, parse_mesh(supercell), rattle, stdev, seed)
    try:
        builder = LabelWorkChain.get_builder_from_protocol(
            nodes, engine=engine, protocol=protocol, bec=bec, overrides=overrides, options=options, **engine_arguments
        )
    except (ValueError, KeyError) as exception:
        raise click.ClickException(str(exception)) from exception
    builder.min_success_fraction = orm.Float(min_success_fraction)
    builder.asr_threshold = orm.Float(asr_threshold)
    if max_concurrent is None:
        max_concurrent = max_concurrent_labels() or 0
    builder.max_concurrent = orm.Int(max_concurrent)
    submit_and_wait(
        builder, wait_s, describe=f' for {len(nodes)} structure(s): {", ".join(nodes)}', report=echo_summary
    )


def echo_summary(node) -> None:
    """One line per structure: status, ASR violation, and the message of anything not fully labelled."""
    if 'summary' not in node.outputs:
        return
    for key, outcome in node.outputs.summary['structures'].items():
        asr = outcome.get('asr_violation')
        extra = f' ASR {asr:.3f} e' if asr is not None else ''
        message = f'  [{outcome["exit_status"]}] {outcome["message"]}' if outcome['status'] != 'labelled' else ''
        click.echo(f'{key:<24} {outcome["formula"]:<12} {outcome["status"]:<9}{extra}{message}')
    if 'dataset' in node.outputs:
        click.echo(f'dataset: DatasetData<{node.outputs.dataset.pk}> ({node.outputs.dataset.n_frames} frames)')
