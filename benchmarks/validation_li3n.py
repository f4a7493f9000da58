"""``ValidationWorkChain`` for real: a Li3N model against QE on alpha-Li3N, with the profile's codes.

Runs the workchain in this process (no daemon needed) on a profile made by ``ionfield setup laptop`` and
writes what it measured: the table (every comparison with its thresholds and status), the DFT and model
numbers (elastic matrix and moduli, zero-stress lattice, Gamma frequencies, Born charges), how many DFT
jobs it took and the wall time of each stage. The model is any ``ModelData`` or the first member of a
``CommitteeData`` (e.g. the ``committee`` output of ``ionfield quickstart``). The command::

    OMP_NUM_THREADS=1 python benchmarks/validation_li3n.py -p <profile> --model <pk> \\
        --out benchmarks/results/validation_li3n.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def _seconds(node) -> float:
    return round((node.mtime - node.ctime).total_seconds(), 1)


def stage_seconds(node) -> dict:
    """Wall seconds of the two DFT stages, and of everything after them (the model's side and the table)."""
    children = {link.link_label: link.node for link in node.base.links.get_outgoing().all()}
    stages = {label: _seconds(children[label]) for label in ('label_structures', 'label_relaxed') if label in children}
    if 'label_relaxed' in children:
        stages['model_and_table'] = round((node.mtime - children['label_relaxed'].mtime).total_seconds(), 1)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-p', '--profile', required=True)
    parser.add_argument('--model', required=True, help='ModelData or CommitteeData pk/UUID (a committee: member 0).')
    parser.add_argument('--protocol', default='fast')
    parser.add_argument('--out', type=Path, required=True)
    args = parser.parse_args()

    from aiida import load_profile, orm
    from aiida.engine import run_get_node

    profile = load_profile(args.profile)

    from ionfield.models.structures.reference import get_reference_structure
    from ionfield.plugins.cli.defaults import label_overrides, max_concurrent_labels, qe_codes
    from ionfield.plugins.data.model import CommitteeData
    from ionfield.workflows.validation.workchain import ValidationWorkChain, describe_row

    model = orm.load_node(args.model)
    if isinstance(model, CommitteeData):
        model = model.members[0]
    structure = orm.StructureData(ase=get_reference_structure('alpha-Li3N'), label='alpha-Li3N')
    concurrency = max_concurrent_labels()
    builder = ValidationWorkChain.get_builder_from_protocol(
        structure,
        model,
        protocol=args.protocol,
        overrides={'max_concurrent_labels': concurrency} if concurrency else None,
        label_overrides=label_overrides(),
        **qe_codes(profile.name),
    )
    builder.override = orm.Bool(True)  # measure every number even when the gate fails
    start = time.monotonic()
    results, node = run_get_node(builder)
    wall = time.monotonic() - start
    stages = stage_seconds(node)
    jobs = [n for n in node.called_descendants if n.process_label in ('PwCalculation', 'PhCalculation')]
    table = results['table'].get_dict() if 'table' in results else None
    record = {
        'command': f'OMP_NUM_THREADS=1 python benchmarks/validation_li3n.py -p <profile> --model {args.model}',
        'machine': f'{platform.machine()}, {platform.processor() or "cpu"}; QE of the profile, 2 MPI ranks',
        'workchain': {'pk': node.pk, 'exit_status': node.exit_status, 'exit_message': node.exit_message},
        'model': {'uuid': model.uuid, 'dataset_uuid': model.base.attributes.get('dataset_uuid'), 'seed': model.seed},
        'protocol': args.protocol,
        'wall_s': round(wall, 1),
        'stage_s': stages,
        'dft_jobs': {
            'pw.x': sum(n.process_label == 'PwCalculation' for n in jobs),
            'ph.x': sum(n.process_label == 'PhCalculation' for n in jobs),
        },
        'table': table,
        'dft': results['dft'].get_dict() if 'dft' in results else None,
        'model_properties': results['model_properties'].get_dict() if 'model_properties' in results else None,
    }
    args.out.write_text(json.dumps(record, indent=1) + '\n')
    print(f'ValidationWorkChain<{node.pk}> [{node.exit_status}] in {wall:.0f} s, {record["dft_jobs"]}')
    for row in (table or {}).get('rows', []):
        print(f'{row["status"]:<5} {describe_row(row)}')


if __name__ == '__main__':
    main()
