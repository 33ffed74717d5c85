"""Facts about Django model fields that extract and load share."""

from __future__ import annotations

#: ``Field.get_internal_type()`` of the integer fields (auto fields included)
INTEGER_FIELD_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
    }
)
