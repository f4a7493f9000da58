"""Orchestration overhead of ``LabelWorkChain``: the share of wall time not spent inside pw.x/ph.x.

Labels N seeded rattled copies of alpha-Li3N on the daemon of a profile made by ``ionfield setup``,
one structure at a time (``max_concurrent=1``, as ``ionfield label`` does on a laptop), and compares the
workchain's wall time with the sum of the wall times pw.x and ph.x report for themselves. Goal: < 3 %.
Every run uses a new seed unless ``--seed`` is given, so no result comes from the cache.

    python benchmarks/label_overhead.py -p ionfield --frames 8            # SCF only (worst case: short jobs)
    python benchmarks/label_overhead.py -p ionfield --frames 8 --bec      # SCF + DFPT

Results are written down in docs/labelling.md, not asserted anywhere.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-p', '--profile', default=None)
    parser.add_argument('--frames', type=int, default=8)
    parser.add_argument('--bec', action='store_true')
    parser.add_argument('--stdev', type=float, default=0.05)
    parser.add_argument('--seed', type=int, default=None)
    parser.add_argument('--protocol', default='fast')
    arguments = parser.parse_args()

    from aiida import load_profile, orm
    from aiida.engine import submit

    load_profile(arguments.profile, allow_switch=True)
    from ionfield.models.structures.reference import get_reference_structure
    from ionfield.plugins.setup.settings import get_settings
    from ionfield.workflows.label.workchain import LabelWorkChain
    from ionfield.workflows.structures.functions import rattle_structure

    seed = arguments.seed if arguments.seed is not None else int(time.time())
    settings = get_settings()
    reference = orm.StructureData(ase=get_reference_structure('alpha-Li3N'), label='alpha-Li3N')
    rattled = rattle_structure(reference, orm.Float(arguments.stdev), orm.Int(seed), orm.Int(arguments.frames))
    builder = LabelWorkChain.get_builder_from_protocol(
        dict(rattled),
        protocol=arguments.protocol,
        bec=arguments.bec,
        overrides={'pseudo_family': settings['pseudo_family']},
        pw_code=settings['codes']['pw'],
        ph_code=settings['codes']['ph'] if arguments.bec else None,
    )
    builder.max_concurrent = orm.Int(1)
    node = submit(builder)
    print(f'LabelWorkChain<{node.pk}>: {arguments.frames} rattled Li3N frames, seed {seed}, bec={arguments.bec}')
    while not node.is_terminated:
        time.sleep(2)
    assert node.is_finished_ok, f'[{node.exit_status}] {node.exit_message}'

    calcs = [child for child in node.called_descendants if isinstance(child, orm.CalcJobNode)]
    cached = [calc for calc in calcs if calc.base.caching.is_created_from_cache]
    inside = sum(calc.outputs.output_parameters['wall_time_seconds'] for calc in calcs)
    calc_span = sum((calc.mtime - calc.ctime).total_seconds() for calc in calcs)
    total = (node.mtime - node.ctime).total_seconds()
    print(f'calculations: {len(calcs)} ({len(cached)} from cache)')
    print(f'wall time of the workchain:         {total:8.1f} s')
    print(f'inside pw.x/ph.x (their own clock): {inside:8.1f} s')
    print(f'calcjob lifetimes (create->parsed): {calc_span:8.1f} s')
    outside = (total - calc_span) / total
    print(f'overhead share: {(total - inside) / total:.1%}  (of which outside calcjobs: {outside:.1%})')


if __name__ == '__main__':
    main()
