"""Restart an active-learning run from any finished iteration, losing no finished DFT label.

The new ``ActiveLearningWorkChain`` gets the inputs of the old one, plus

* ``dataset``: the dataset after iteration N, merged with every frame that a later labelling of the
  old run computed (those DFT hours are paid for; ``later_labels=False`` leaves them out);
* ``parent_committee``: the committee of iteration N (warm start);
* ``previous_history``: iterations 1..N, so numbering, the convergence streak and adapted trust
  levels go on.
"""

from __future__ import annotations

from aiida import orm
from aiida.common.links import LinkType

from .functions import merge_datasets


class RestartError(ValueError):
    """The node cannot be restarted from the asked iteration."""


def is_active_learning(node) -> bool:
    """Whether ``node`` was made by an ``ActiveLearningWorkChain`` (or a subclass)."""
    from .workchain import ActiveLearningWorkChain

    try:
        return issubclass(node.process_class, ActiveLearningWorkChain)
    except (AttributeError, ValueError, TypeError):
        return False


def _namespace_outputs(node, namespace: str) -> dict:
    links = node.base.links.get_outgoing(link_type=LinkType.RETURN).all()
    prefix = f'{namespace}__'
    return {link.link_label[len(prefix) :]: link.node for link in links if link.link_label.startswith(prefix)}


def finished_history(node) -> list[dict]:
    """The per-iteration dicts of ``node`` (from ``iterations.*``, so also for a failed or running node)."""
    iterations = _namespace_outputs(node, 'iterations')
    return [iterations[key].get_dict() for key in sorted(iterations)]


def _stage_iteration(call_link_label: str) -> int | None:
    """label_initial_bec -> 0, label_iter_03_plain -> 3, anything else -> None."""
    if call_link_label.startswith('label_initial_'):
        return 0
    if call_link_label.startswith('label_iter_'):
        try:
            return int(call_link_label.split('_')[2])
        except (IndexError, ValueError):
            return None
    return None


def later_label_datasets(node, first: int) -> dict[str, orm.Data]:
    """Datasets made by labelling stages of ``node`` from iteration ``first`` on (failed batches included)."""
    found = {}
    for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all():
        stage = _stage_iteration(link.link_label)
        if stage is None or stage < first:
            continue
        if 'dataset' in link.node.outputs:
            found[link.link_label] = link.node.outputs.dataset
    return found


def builder_with_inputs_of(node):
    """A builder with every input node of ``node``, set port by port.

    ``node.get_builder_restart()`` sets whole namespaces at once, and a namespace exposing a CalcJob
    (``committee.member.train``) then fails validation on its ``metadata.options.resources``.
    """
    builder = node.process_class.get_builder()
    for link in node.base.links.get_incoming(link_type=(LinkType.INPUT_CALC, LinkType.INPUT_WORK)).all():
        *path, name = link.link_label.split('__')
        target = builder
        for part in path:
            target = target[part]
        target[name] = link.node
    return builder


def restart_builder(node, iteration: int | None = None, later_labels: bool = True, settings: dict | None = None):
    """A builder that continues ``node`` after ``iteration`` (default: its last finished one)."""
    if not is_active_learning(node):
        raise RestartError(
            f'node {node.pk} is a {node.process_label or type(node).__name__}, not an ActiveLearningWorkChain'
        )
    if not node.is_terminated:
        raise RestartError(f'ActiveLearningWorkChain<{node.pk}> is still running: wait for it or kill it first')
    history = finished_history(node)
    done = [entry['iteration'] for entry in history]
    if iteration is None:
        iteration = done[-1] if done else 0
    if iteration and iteration not in done:
        raise RestartError(f'iteration {iteration} did not finish; finished: {done or "none"} (0: the initial data)')
    kept = [entry for entry in history if entry['iteration'] <= iteration]
    builder = builder_with_inputs_of(node)
    parts = {}
    committee = None
    if kept:
        parts['a_dataset'] = orm.load_node(kept[-1]['dataset_uuid'])
        committee = orm.load_node(kept[-1]['committee_uuid'])
    else:
        initial = _namespace_outputs(node, 'datasets').get('initial')
        if initial is None and 'dataset' in node.inputs:
            initial = node.inputs.dataset
        if initial is not None:
            parts['a_dataset'] = initial
        if 'parent_committee' in node.inputs:
            committee = node.inputs.parent_committee
    if later_labels:
        first = iteration + 1 if parts else 0  # nothing kept: even the initial labels are 'later'
        for label, dataset in sorted(later_label_datasets(node, first).items()):
            if 'a_dataset' not in parts or dataset.uuid != parts['a_dataset'].uuid:
                parts[f'b_{label}'] = dataset
    if parts:
        builder.dataset = merge_datasets(**parts) if len(parts) > 1 else parts['a_dataset']
    if committee is not None:
        builder.parent_committee = committee
    else:
        builder.pop('parent_committee', None)
    if kept:
        builder.previous_history = orm.List(kept)
    else:
        builder.pop('previous_history', None)
    if settings:
        current = builder.settings.get_dict() if 'settings' in builder else {}
        builder.settings = orm.Dict({**current, **settings})
    return builder, iteration
