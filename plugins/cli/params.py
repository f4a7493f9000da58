"""Loading the nodes a command is given: one way for every kind of node, with the same errors everywhere.

A user names a node by pk or UUID, and where a data node is asked for, the process that made it will do
(``ionfield train <LabelWorkChain pk>`` trains on its ``dataset``). A node that is not there, not of the
right kind, or a process without the output is a usage error (exit 2) that names the parameter.
"""

from __future__ import annotations

import click


def load_node(identifier, param_hint: str):
    """The node with this pk/UUID, or a usage error."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent

    try:
        return orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError) as exception:
        raise click.BadParameter(f'no node `{identifier}`: {exception}', param_hint=param_hint) from exception


def load_output(identifier, classes: tuple[type, ...], ports: tuple[str, ...], param_hint: str):
    """A node of ``classes`` by pk/UUID, or the first of ``ports`` among the outputs of the process with it."""
    from aiida import orm

    node = load_node(identifier, param_hint)
    if isinstance(node, orm.ProcessNode):
        port = next((port for port in ports if port in node.outputs), None)
        if port is None:
            state = node.process_state.value if node.process_state else 'unknown'
            raise click.BadParameter(
                f'{node.process_label}<{node.pk}> has no `{"` or `".join(ports)}` output (state {state})',
                param_hint=param_hint,
            )
        node = node.outputs[port]
    if not isinstance(node, classes):
        names = ' or '.join(cls.__name__ for cls in classes)
        raise click.BadParameter(f'node {node.pk} is a {type(node).__name__}, not a {names}', param_hint=param_hint)
    return node


def load_process(identifier, process_class: type, param_hint: str = 'PK'):
    """A process node run by ``process_class`` (or a subclass of it)."""
    node = load_node(identifier, param_hint)
    try:
        ran = issubclass(node.process_class, process_class)
    except (AttributeError, ValueError, TypeError):
        ran = False
    if not ran:
        name = process_class.__name__
        article = 'an' if name[0] in 'AEIOU' else 'a'
        raise click.BadParameter(f'node {node.pk} is not {article} {name}', param_hint=param_hint)
    return node


def load_dataset(identifier, param_hint: str = 'DATASET'):
    """A ``DatasetData``, or the ``dataset`` output of a process (``LabelWorkChain``, active learning)."""
    from ionfield.plugins.data.dataset import DatasetData

    return load_output(identifier, (DatasetData,), ('dataset',), param_hint)


def load_model(identifier, committee: bool = False, param_hint: str = 'MODEL'):
    """A ``ModelData`` (with ``committee``, also a ``CommitteeData``), or such an output of a process."""
    from ionfield.plugins.data.model import CommitteeData, ModelData

    if committee:
        return load_output(identifier, (ModelData, CommitteeData), ('model', 'committee'), param_hint)
    return load_output(identifier, (ModelData,), ('model',), param_hint)


def load_committee(identifier, param_hint: str = '--parent-committee'):
    """A ``CommitteeData``, or the ``committee`` output of a process."""
    from ionfield.plugins.data.model import CommitteeData

    return load_output(identifier, (CommitteeData,), ('committee',), param_hint)


class LazyChoice(click.Choice):
    """A ``click.Choice`` whose values are imported when first needed: the CLI starts without heavy modules."""

    def __init__(self, module: str, name: str) -> None:
        self._source = (module, name)
        super().__init__(())

    @property
    def choices(self):
        import importlib

        module, name = self._source
        return tuple(getattr(importlib.import_module(module), name))

    @choices.setter
    def choices(self, _value) -> None:  # click.Choice.__init__ assigns it
        pass
