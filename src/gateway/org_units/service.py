"""Organisation units (§17): the tree's rules when a unit is added, and the walks the reports need (a unit's
subtree, a unit's ancestor of a kind), done in Python over the whole small table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.clock import isoformat
from gateway.domain import OrgUnitKind
from gateway.errors import NotFound, OrgUnitExists, ValidationFailed
from gateway.org_units import repository
from gateway.org_units.models import OrgUnit
from gateway.org_units.schemas import OrgUnitCreate, OrgUnitUpdate
from gateway.runtime import Runtime

K = OrgUnitKind
# The kinds each kind's parent may be: a province is the root; an agency sits under any unit but an agency.
PARENT_KINDS: dict[OrgUnitKind, frozenset[OrgUnitKind]] = {
    K.province: frozenset(),
    K.district: frozenset({K.province}),
    K.commune: frozenset({K.district}),
    K.agency: frozenset({K.province, K.district, K.commune}),
}


def org_unit_object(unit: OrgUnit) -> dict[str, Any]:
    return {
        "object": "org_unit",
        "code": unit.code,
        "name": unit.name,
        "kind": unit.kind.value,
        "parent": unit.parent_code,
        "online_target": unit.online_target,
        "created_at": isoformat(unit.created_at),
        "updated_at": isoformat(unit.updated_at),
    }


def _exists(code: str) -> OrgUnitExists:
    return OrgUnitExists(
        f"An organisation unit with code {code!r} already exists.",
        errors=[{"loc": ["body", "code"], "msg": "already taken"}],
    )


async def _check_parent(session: AsyncSession, kind: OrgUnitKind, parent_code: str | None) -> None:
    allowed = PARENT_KINDS[kind]
    loc: list[str | int] = ["body", "parent"]
    if parent_code is None:
        if allowed:
            raise ValidationFailed.field(loc, f"a {kind.value} needs a parent: a {' or '.join(sorted(allowed))}")
        return
    if not allowed:
        raise ValidationFailed.field(loc, "a province has no parent")
    parent = await repository.get(session, parent_code)
    if parent is None:
        raise ValidationFailed.field(loc, f"no organisation unit {parent_code!r}")
    if parent.kind not in allowed:
        raise ValidationFailed.field(
            loc, f"a {kind.value}'s parent must be a {' or '.join(sorted(allowed))}, not a {parent.kind.value}"
        )


async def create_unit(session: AsyncSession, rt: Runtime, params: OrgUnitCreate) -> OrgUnit:
    if await repository.get(session, params.code) is not None:
        raise _exists(params.code)
    await _check_parent(session, params.kind, params.parent)
    now = rt.clock.now()
    unit = OrgUnit(
        code=params.code,
        name=params.name,
        kind=params.kind,
        parent_code=params.parent,
        online_target=params.online_target,
        created_at=now,
        updated_at=now,
    )
    if not await repository.add_unless_exists(session, unit):
        raise _exists(params.code)
    return unit


async def get_unit(session: AsyncSession, code: str, *, lock: bool = False) -> OrgUnit:
    unit = await repository.get(session, code, lock=lock)
    if unit is None:
        raise NotFound(f"No organisation unit {code}.")
    return unit


async def existing_code(session: AsyncSession, code: str | None, loc: list[str | int]) -> str | None:
    """`code` when it names a unit (or is None); else a 422 naming `loc` — for objects that point at a unit."""
    if code is not None and await repository.get(session, code) is None:
        raise ValidationFailed.field(loc, f"no organisation unit {code!r}")
    return code


async def list_units(session: AsyncSession, limit: int, starting_after: str | None) -> tuple[list[OrgUnit], bool]:
    return await repository.list_page(session, limit, starting_after)


async def update_unit(session: AsyncSession, rt: Runtime, code: str, params: OrgUnitUpdate) -> OrgUnit:
    unit = await get_unit(session, code, lock=True)
    if params.name is not None:
        unit.name = params.name
    if "online_target" in params.model_fields_set:
        unit.online_target = params.online_target
    unit.updated_at = rt.clock.now()
    await session.flush()
    return unit


class Tree:
    """The whole unit table, walked in memory: a province's tree has hundreds of units, not millions."""

    def __init__(self, units: Iterable[OrgUnit]) -> None:
        self.units: Mapping[str, OrgUnit] = {u.code: u for u in units}
        children: dict[str, list[str]] = {}
        for unit in self.units.values():
            if unit.parent_code is not None:
                children.setdefault(unit.parent_code, []).append(unit.code)
        self._children = children

    def subtree(self, code: str) -> list[str]:
        """The unit and every unit below it."""
        found, stack = [], [code]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(self._children.get(current, []))
        return sorted(found)

    def ancestor_of_kind(self, code: str, kind: OrgUnitKind) -> str:
        """The unit itself or the closest unit above it of that kind; the unit itself when none is (a department
        directly under the province has no district) or when the code is not a known unit."""
        current = self.units.get(code)
        seen: set[str] = set()
        while current is not None and current.code not in seen:
            if current.kind is kind:
                return current.code
            seen.add(current.code)
            current = self.units.get(current.parent_code) if current.parent_code is not None else None
        return code


async def tree(session: AsyncSession) -> Tree:
    return Tree(await repository.all_units(session))
