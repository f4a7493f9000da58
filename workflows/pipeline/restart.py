"""Go on with a pipeline from its last finished stage (``ionfield run --restart PK``), losing nothing computed.

The new ``PipelineWorkChain`` gets the inputs of the old one, and in ``restart``:

* a finished exploration's ``committee``, ``dataset`` and ``history`` (its active learning is not rerun);
  if the exploration itself failed, its finished iterations go to ``active_learning`` instead
  (:func:`ionfield.workflows.active_learning.restart.restart_builder`: dataset with every later label,
  warm-start committee, history), so it continues where it stopped;
* every finished validation table (the gate is judged again with the new run's settings, so
  ``override_validation`` takes effect without redoing any DFT).

The structure check, the systems (calcfunctions, cheap) and the campaign are run again.
"""

from __future__ import annotations

from aiida.common.links import LinkType

from ionfield.workflows.active_learning.restart import RestartError, builder_with_inputs_of, finished_history
from ionfield.workflows.active_learning.restart import restart_builder as active_learning_restart

__all__ = ('RestartError', 'restart_builder')


def is_pipeline(node) -> bool:
    from .workchain import PipelineWorkChain

    try:
        return issubclass(node.process_class, PipelineWorkChain)
    except (AttributeError, ValueError, TypeError):
        return False


def _called(node, label: str):
    for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK).all():
        if link.link_label == label:
            return link.node
    return None


def restart_builder(node, settings: dict | None = None):
    """A builder that continues ``node``; ``settings`` update its PipelineSettings. Also returns what is reused."""
    if not is_pipeline(node):
        raise RestartError(f'node {node.pk} is a {node.process_label or type(node).__name__}, not a PipelineWorkChain')
    if not node.is_terminated:
        raise RestartError(f'PipelineWorkChain<{node.pk}> is still running: wait for it or kill it first')
    builder = builder_with_inputs_of(node)
    reused = []
    outputs = node.outputs
    if 'committee' in outputs:
        builder.restart.committee = outputs.committee
        for name in ('dataset', 'history'):
            if name in outputs:
                builder.restart[name] = outputs[name]
        reused.append(f'exploration (committee {outputs.committee.pk})')
    else:
        exploration = _called(node, 'active_learning')
        if exploration is not None and exploration.is_terminated:
            continued, iteration = active_learning_restart(exploration)
            for name in ('dataset', 'parent_committee', 'previous_history'):
                if name in continued:
                    builder.active_learning[name] = continued[name]
                else:
                    builder.active_learning.pop(name, None)
            done = len(finished_history(exploration))
            reused.append(f'active learning after iteration {iteration} ({done} finished)')
    for link in node.base.links.get_outgoing(link_type=LinkType.RETURN).all():
        if link.link_label.startswith('validation__'):
            key = link.link_label[len('validation__') :]
            builder.restart.validation[key] = link.node
            reused.append(f'validation of {key}')
    if settings:
        from aiida import orm

        builder.settings = orm.Dict({**builder.settings.get_dict(), **settings})
    return builder, reused
