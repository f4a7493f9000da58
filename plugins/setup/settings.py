"""Per-profile settings of aiida-ionfield (which computer, codes and pseudo family to use by default).

They are kept as extras of a group in the profile itself, so they travel with the data when a
profile is moved with ``verdi archive`` and are visible to QueryBuilder.
"""

from __future__ import annotations

__all__ = ('SETTINGS_GROUP', 'get_settings', 'update_settings')

SETTINGS_GROUP = 'ionfield/settings'


def _group(create: bool):
    from aiida import orm

    groups = (
        orm.QueryBuilder().append(orm.Group, filters={'label': SETTINGS_GROUP, 'type_string': 'core'}).all(flat=True)
    )
    if groups:
        return groups[0]
    if not create:
        return None
    return orm.Group(
        label=SETTINGS_GROUP, description='Default computer, codes and pseudo family of aiida-ionfield.'
    ).store()


def get_settings() -> dict:
    """Return the settings of the loaded profile (empty if ``ionfield setup`` never ran). Changes nothing."""
    group = _group(create=False)
    return dict(group.base.extras.all) if group is not None else {}


def update_settings(**values) -> dict:
    group = _group(create=True)
    group.base.extras.set_many(values)
    return dict(group.base.extras.all)
