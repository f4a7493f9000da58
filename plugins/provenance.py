"""Where a number came from: the data provenance of any node, walked back to the DFT calculations.

A transport number (an ``analysis`` Dict of a campaign, a validation ``table``, a model, a dataset) was made
by a chain of calculations: pw.x/ph.x jobs -> frames -> datasets -> training jobs -> models -> MD jobs ->
trajectories -> analysis calcfunctions. AiiDA records that chain as ``CREATE`` links (a calculation made a
data node) and ``INPUT_CALC`` links (a calculation took a data node). Walking those two backwards from a
node, and nothing else, gives exactly what the number depends on: the workflows that orchestrated the
calculations (``CALL``/``RETURN`` links) are left out, because they only decided what to run.

:func:`upstream` does the walk (aiida's ``traverse_graph``, a few queries however large the graph) and sorts
what it found into the kinds a reader asks about; ``ionfield provenance`` prints it. docs/provenance.md
has the QueryBuilder recipes for the questions this does not answer directly.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from aiida import orm
from aiida.common.links import LinkType
from aiida.tools.graph.graph_traversers import traverse_graph

from ionfield.plugins.data.dataset import DatasetData
from ionfield.plugins.data.model import CommitteeData, ModelData
from ionfield.plugins.data.trajectory import MDTrajectoryData

#: Entry points of the calculations that are DFT (their outputs are the labels).
DFT_CALCULATIONS = {
    'aiida.calculations:quantumespresso.pw': 'pw.x',
    'aiida.calculations:quantumespresso.ph': 'ph.x',
    'aiida.calculations:vasp.vasp': 'VASP',
}
TRAIN_CALCULATION = 'aiida.calculations:ionfield.train'
MD_CALCULATION = 'aiida.calculations:ionfield.md'

#: The kinds a walk sorts nodes into, in the order they are printed (from the number back to DFT).
KINDS = (
    ('steps', 'analysis and bookkeeping steps (calcfunctions)'),
    ('trajectories', 'MD trajectories'),
    ('md', 'MD jobs'),
    ('models', 'models'),
    ('training', 'training jobs'),
    ('datasets', 'datasets'),
    ('dft', 'DFT calculations'),
    ('structures', 'structures'),
    ('files', 'files'),
)


@dataclasses.dataclass
class Provenance:
    """The upstream of ``node``: every node it depends on, by kind (lists of nodes, oldest first)."""

    node: orm.Node
    kinds: dict[str, list[orm.Node]]
    n_nodes: int

    def dft_programs(self) -> Counter:
        """How many DFT jobs of each program (``pw.x``, ``ph.x``, ``VASP``)."""
        return Counter(DFT_CALCULATIONS[node.process_type] for node in self.kinds['dft'])

    def step_names(self) -> Counter:
        return Counter(node.process_label for node in self.kinds['steps'])

    def summary(self) -> dict:
        """Plain values: counts per kind, the pks of each, DFT jobs per program and the steps by name."""
        return {
            'node': self.node.pk,
            'n_nodes': self.n_nodes,
            'counts': {kind: len(nodes) for kind, nodes in self.kinds.items()},
            'pks': {kind: [node.pk for node in nodes] for kind, nodes in self.kinds.items()},
            'dft_programs': dict(self.dft_programs()),
            'steps': dict(self.step_names()),
        }


def _kind(node: orm.Node) -> str | None:
    if isinstance(node, orm.CalcJobNode):
        if node.process_type in DFT_CALCULATIONS:
            return 'dft'
        return {TRAIN_CALCULATION: 'training', MD_CALCULATION: 'md'}.get(node.process_type)
    if isinstance(node, orm.CalcFunctionNode):
        return 'steps'
    for kind, classes in (
        ('datasets', DatasetData),
        ('models', (ModelData, CommitteeData)),
        ('trajectories', MDTrajectoryData),
        ('structures', orm.StructureData),
        ('files', orm.SinglefileData),
    ):
        if isinstance(node, classes):
            return kind
    return None


def upstream(node: orm.Node) -> Provenance:
    """Every node ``node`` depends on (through ``CREATE`` and ``INPUT_CALC`` links, backwards), by kind.

    For a workflow, whose outputs were made by its calculations, the walk starts from all of its outputs.
    """
    if isinstance(node, orm.WorkflowNode):
        start = {output.pk for output in node.base.links.get_outgoing(link_type=LinkType.RETURN).all_nodes()}
    else:
        start = {node.pk}
    walked = traverse_graph(sorted(start), links_backward=[LinkType.CREATE, LinkType.INPUT_CALC]) if start else None
    pks = (set(walked['nodes']) if walked else set()) - {node.pk}
    kinds: dict[str, list[orm.Node]] = {kind: [] for kind, _ in KINDS}
    if pks:
        query = orm.QueryBuilder().append(orm.Node, filters={'id': {'in': sorted(pks)}}, tag='n')
        query.order_by({'n': 'ctime'})
        for found in query.all(flat=True):
            kind = _kind(found)
            if kind is not None:
                kinds[kind].append(found)
    return Provenance(node=node, kinds=kinds, n_nodes=len(pks))


def describe(node: orm.Node) -> str:
    """One line for a node: its class and pk, and what a reader needs to recognise it."""
    name = f'{type(node).__name__}<{node.pk}>'
    if isinstance(node, orm.ProcessNode):
        state = 'ok' if node.is_finished_ok else f'[{node.exit_status}]' if node.is_finished else node.process_state
        return f'{node.process_label}<{node.pk}> {state}'
    if isinstance(node, DatasetData):
        return f'{name} {node.n_frames} frames of {", ".join(node.species)}'
    if isinstance(node, ModelData):
        return f'{name} seed {node.seed}, species {", ".join(node.species)}, head {"yes" if node.has_bec else "no"}'
    if isinstance(node, orm.StructureData):
        return f'{name} {node.get_formula()}' + (f' ({node.label})' if node.label else '')
    if isinstance(node, orm.SinglefileData):
        return f'{name} {node.filename}'
    return name
