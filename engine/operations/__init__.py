"""Automatic operations: the plugin contract and the registry of kinds.

Built-in kinds and plugins (entry point group ``soa.operations``) use the same
contract; see docs/plugins.md.
"""

from engine.operations.contract import CheckpointStore, Operation, RunContext
from engine.operations.registry import (
    BUILT_IN_KINDS,
    ENTRY_POINT_GROUP,
    KindNotAvailableError,
    OperationRegistry,
    UnknownKindError,
)

__all__ = [
    "BUILT_IN_KINDS",
    "ENTRY_POINT_GROUP",
    "CheckpointStore",
    "KindNotAvailableError",
    "Operation",
    "OperationRegistry",
    "RunContext",
    "UnknownKindError",
]
